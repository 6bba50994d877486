//! `user.*` and `group.*`: ids as ECS strings, the real ids in `Ext`.

use super::*;

/// `{"id": "<n>"}`: ECS user and group ids are strings.
pub(super) struct IdObj(pub(super) u32);

impl Serialize for IdObj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("id", itoa::Buffer::new().format(self.0))?;
        m.end()
    }
}

/// Top-level `user`/`group`: the effective id, and the real one in `Ext`.
#[derive(Serialize)]
pub(super) struct TopIdObj<'a> {
    id: DisplayStr<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "Ext")]
    ext: RealExt,
}

#[derive(Serialize)]
pub(super) struct RealExt {
    real: RealId,
}

#[derive(Serialize)]
pub(super) struct RealId {
    id: DisplayStr<u32>,
}

impl<'a> TopIdObj<'a> {
    pub(super) fn new(effective: u32, real: u32, name: Option<&'a str>) -> Self {
        Self {
            id: DisplayStr(effective),
            name,
            ext: RealExt {
                real: RealId {
                    id: DisplayStr(real),
                },
            },
        }
    }
}
