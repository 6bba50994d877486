//! A small reader for the kernel's BTF (`/sys/kernel/btf/vmlinux`): just
//! enough to find struct member offsets and enum values.
//!
//! Hand-written on purpose: aya-obj parses BTF but keeps member data
//! crate-private, and the maintained standalone parser (btf-rs) is LGPL.

use std::{collections::HashMap, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error(
        "cannot read BTF from {path}: {source}. Is this kernel built with CONFIG_DEBUG_INFO_BTF=y?"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("kernel BTF struct `{strukt}` has no member `{member}`")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF member `{strukt}.{member}` is not a struct or union, cannot descend")]
    NotComposite { strukt: String, member: String },
    #[error("kernel BTF has no enum value `{0}`")]
    NoEnumValue(String),
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Names are kept as offsets into the string section, not as `String`s:
/// a kernel's BTF has about a million members and enumerators, and owning
/// their names made this parse the agent's start-up peak (58 MiB VmHWM).
#[derive(Clone, Copy, Debug)]
struct Member {
    name: u32,
    type_id: u32,
    /// Offset from the start of the enclosing struct, in bits.
    bit_offset: u32,
}

#[derive(Clone, Debug)]
enum Type {
    Composite {
        size: u32,
        members: Box<[Member]>,
    },
    Enum {
        values: Box<[(u32, i64)]>,
    },
    /// typedef/const/volatile/restrict/type_tag: transparent wrappers.
    Alias(u32),
    Other,
}

/// The parsed type graph. Type id `n` is `types[n]`; id 0 is `void`.
pub struct Btf {
    types: Vec<Type>,
    structs_by_name: HashMap<Box<str>, u32>,
    strings: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or(BtfError::Malformed("truncated"))
}

fn str_at(strings: &[u8], off: u32) -> &[u8] {
    let s = strings.get(off as usize..).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    &s[..end]
}

impl Btf {
    pub const VMLINUX: &'static str = "/sys/kernel/btf/vmlinux";

    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data)
    }

    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(Path::new(Self::VMLINUX))
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        Self::parse_with(data, &[])
    }

    /// A module's split BTF on top of `base` (the kernel's): its string
    /// offsets continue the base's, so the base's strings are put first.
    /// Its type ids also continue the base's; only members of the module's
    /// own structs resolve (enough for offsets, not for descending into
    /// base types).
    pub fn parse_split(base: &Btf, data: &[u8]) -> Result<Self, BtfError> {
        Self::parse_with(data, &base.strings)
    }

    fn parse_with(data: &[u8], base_strings: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::Malformed(
                "bad magic (only little-endian BTF is supported)",
            ));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_sec = data
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or(BtfError::Malformed("type section out of bounds"))?;
        let own = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section out of bounds"))?;
        let joined;
        let strings = if base_strings.is_empty() {
            own
        } else {
            joined = [base_strings, own].concat();
            &joined[..]
        };

        let mut types = vec![Type::Other]; // id 0: void
        let mut structs_by_name = HashMap::new();
        let mut at = 0;
        while at < types_sec.len() {
            let name_off = u32_at(types_sec, at)?;
            let info = u32_at(types_sec, at + 4)?;
            let size_or_type = u32_at(types_sec, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let ty = match kind {
                KIND_INT => {
                    at += 4;
                    Type::Other
                }
                KIND_PTR => Type::Other,
                KIND_ARRAY => {
                    let elem = u32_at(types_sec, at)?;
                    let n = u32_at(types_sec, at + 8)?;
                    at += 12;
                    // Array size needs the element size; resolved lazily is
                    // overkill here, record the element count on Other.
                    let _ = (elem, n);
                    Type::Other
                }
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let m_name = u32_at(types_sec, at)?;
                        let m_type = u32_at(types_sec, at + 4)?;
                        let m_off = u32_at(types_sec, at + 8)?;
                        at += 12;
                        members.push(Member {
                            name: m_name,
                            type_id: m_type,
                            bit_offset: if kind_flag { m_off & 0xff_ffff } else { m_off },
                        });
                    }
                    let name = str_at(strings, name_off);
                    if kind == KIND_STRUCT && !name.is_empty() {
                        // The first definition wins; later same-named ones are
                        // from modules or rare duplicates.
                        structs_by_name
                            .entry(String::from_utf8_lossy(name).into())
                            .or_insert(types.len() as u32);
                    }
                    Type::Composite {
                        size: size_or_type,
                        members: members.into(),
                    }
                }
                KIND_ENUM => {
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let v_name = u32_at(types_sec, at)?;
                        let v = u32_at(types_sec, at + 4)? as i32 as i64;
                        at += 8;
                        values.push((v_name, v));
                    }
                    Type::Enum {
                        values: values.into(),
                    }
                }
                KIND_ENUM64 => {
                    let mut values = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let v_name = u32_at(types_sec, at)?;
                        let lo = u32_at(types_sec, at + 4)? as u64;
                        let hi = u32_at(types_sec, at + 8)? as u64;
                        at += 12;
                        values.push((v_name, ((hi << 32) | lo) as i64));
                    }
                    Type::Enum {
                        values: values.into(),
                    }
                }
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    Type::Alias(size_or_type)
                }
                KIND_FUNC_PROTO => {
                    at += 8 * vlen;
                    Type::Other
                }
                KIND_VAR | KIND_DECL_TAG => {
                    at += 4;
                    Type::Other
                }
                KIND_DATASEC => {
                    at += 12 * vlen;
                    Type::Other
                }
                KIND_FWD | KIND_FUNC | KIND_FLOAT => Type::Other,
                _ => return Err(BtfError::Malformed("unknown type kind")),
            };
            types.push(ty);
        }
        Ok(Self {
            types,
            structs_by_name,
            strings: strings.to_vec(),
        })
    }

    fn resolve(&self, mut id: u32) -> u32 {
        // Bounded: alias chains are short; a cycle would be malformed BTF.
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(Type::Alias(t)) => id = *t,
                _ => break,
            }
        }
        id
    }

    fn members_of(&self, id: u32) -> Option<&[Member]> {
        match self.types.get(self.resolve(id) as usize) {
            Some(Type::Composite { members, .. }) => Some(members),
            _ => None,
        }
    }

    /// Finds `name` among `members`, looking through anonymous struct and
    /// union members (the kernel nests fields in them freely, e.g.
    /// `mm_struct`'s randomized block). Returns (bit offset, type id).
    fn find_member(&self, members: &[Member], name: &str, depth: u32) -> Option<(u32, u32)> {
        let is = |m: &Member| str_at(&self.strings, m.name) == name.as_bytes();
        if let Some(m) = members.iter().find(|m| is(m)) {
            return Some((m.bit_offset, m.type_id));
        }
        if depth > 8 {
            return None;
        }
        members
            .iter()
            .filter(|m| m.name == 0 || str_at(&self.strings, m.name).is_empty())
            .find_map(|m| {
                let inner = self.members_of(m.type_id)?;
                let (off, ty) = self.find_member(inner, name, depth + 1)?;
                Some((m.bit_offset + off, ty))
            })
    }

    /// Byte offset of a dotted member path (`"ns.inum"`) in struct `strukt`.
    pub fn member_offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs_by_name
            .get(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        let mut members = self.members_of(id).unwrap_or_default();
        let mut bits = 0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let (off, ty) =
                self.find_member(members, part, 0)
                    .ok_or_else(|| BtfError::NoMember {
                        strukt: strukt.to_string(),
                        member: path.to_string(),
                    })?;
            bits += off;
            if parts.peek().is_some() {
                members = self.members_of(ty).ok_or_else(|| BtfError::NotComposite {
                    strukt: strukt.to_string(),
                    member: part.to_string(),
                })?;
            }
        }
        Ok(bits / 8)
    }

    /// Size in bytes of struct `strukt`.
    pub fn struct_size(&self, strukt: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs_by_name
            .get(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        match &self.types[id as usize] {
            Type::Composite { size, .. } => Ok(*size),
            _ => Err(BtfError::NoStruct(strukt.to_string())),
        }
    }

    /// Value of an enumerator, searched across all enums (names are global in C).
    pub fn enum_value(&self, name: &str) -> Result<i64, BtfError> {
        self.types
            .iter()
            .find_map(|t| match t {
                Type::Enum { values } => values
                    .iter()
                    .find(|(n, _)| str_at(&self.strings, *n) == name.as_bytes())
                    .map(|(_, v)| *v),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoEnumValue(name.to_string()))
    }
}
