//! The few fields the rule index reads, answered from the typed event
//! rather than captured from its serialisation: most events match no rule
//! and need nothing else, and capturing these cost about a third of the
//! agent's CPU per exec in a host exec storm (`perf`, 2026-12-07).
//!
//! Each answer is what the written document holds at that path (test
//! `the_index_view_answers_what_the_document_holds`).

use std::{borrow::Cow, sync::OnceLock};

use sensor_rules::{
    Document, Leaf,
    value::{FieldId, FieldPath, Val},
};

use super::EcsDoc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    EventCategory,
    EventType,
    EventAction,
    EventDataset,
    ProcessName,
    ProcessEntityId,
    ContainerId,
    /// A field process and file events never have.
    Absent,
}

const FIELDS: [(&str, Field); 9] = [
    ("event.category", Field::EventCategory),
    ("event.type", Field::EventType),
    ("event.action", Field::EventAction),
    ("event.dataset", Field::EventDataset),
    ("process.name", Field::ProcessName),
    ("process.entity_id", Field::ProcessEntityId),
    ("container.id", Field::ContainerId),
    ("data_stream.dataset", Field::Absent),
    ("kubernetes.audit.objectRef.resource", Field::Absent),
];

fn field(path: &FieldPath) -> Option<Field> {
    static IDS: OnceLock<Vec<(FieldId, Field)>> = OnceLock::new();
    let ids = IDS.get_or_init(|| {
        FIELDS
            .iter()
            .map(|(name, f)| (FieldPath::dotted_name(name).id, *f))
            .collect()
    });
    ids.iter().find(|(id, _)| *id == path.id).map(|(_, f)| *f)
}

/// `doc` as the index reads it (see
/// `sensor_rules::engine::Engine::process_typed_indexed`).
#[derive(Clone, Copy)]
pub struct IndexView<'a>(pub(super) &'a EcsDoc<'a>);

impl Document for IndexView<'_> {
    fn leaves<'e>(&'e self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'e>) -> bool) -> bool {
        let d = self.0;
        let (category, r#type, dataset) = d.action.categorisation();
        let process = &*d.view.process;
        let s = |v: &'e str| Leaf::Scalar(Val::Str(Cow::Borrowed(v)));
        match field(path) {
            Some(Field::EventCategory) => f(s(category)),
            Some(Field::EventType) => f(s(r#type)),
            Some(Field::EventAction) => f(s(d.action.name())),
            Some(Field::EventDataset) => f(s(dataset)),
            Some(Field::ProcessName) => !process.image.name.is_empty() && f(s(&process.image.name)),
            Some(Field::ProcessEntityId) => f(s(&process.entity_id)),
            Some(Field::ContainerId) => match d.container {
                Some(ctx) => f(s(ctx.id())),
                None => process.container_id().is_some_and(|id| f(s(id))),
            },
            Some(Field::Absent) => false,
            None => {
                debug_assert!(false, "the index read {}", path.dotted());
                false
            }
        }
    }

    fn timestamp_ns(&self) -> Option<i64> {
        Some(self.0.timestamp_ns())
    }
}

/// Every path the engine may read from an index view.
#[cfg(test)]
pub fn paths() -> impl Iterator<Item = &'static FieldPath> {
    sensor_rules::engine::Engine::index_paths()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_the_index_reads_is_answered() {
        for p in paths() {
            assert!(field(p).is_some(), "{} has no typed answer", p.dotted());
        }
    }
}
