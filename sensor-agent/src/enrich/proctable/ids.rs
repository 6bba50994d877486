//! Stable identities: ECS `entity_id` and the kernel's tty names.

use crate::decode::CharDevice;

/// 128-bit FNV-1a: tiny, dependency-free and stable across builds and
/// releases (unlike std's hasher), which entity_id needs.
pub(crate) fn fnv1a_128(parts: &[&[u8]]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// ECS `entity_id`: a hash of (host id, pid, start in clock ticks). Ticks,
/// not ns, so a process seeded from /proc (which only has ticks) and the
/// same process seen by the kernel get the same id.
pub fn entity_id(host_id: &str, pid: u32, start_ticks: u64) -> String {
    format!(
        "{:032x}",
        fnv1a_128(&[
            host_id.as_bytes(),
            &pid.to_le_bytes(),
            &start_ticks.to_le_bytes()
        ])
    )
}

/// The kernel's name for a tty device (/proc has only its number).
pub(super) fn tty_name(d: CharDevice) -> String {
    match d.major {
        // Unix98 ptys: 136..143, 256 minors each.
        136..=143 => format!("pts{}", (d.major - 136) * 256 + d.minor),
        4 if d.minor < 64 => format!("tty{}", d.minor),
        4 => format!("ttyS{}", d.minor - 64),
        _ => String::new(),
    }
}
