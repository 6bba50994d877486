//! A compiled EQL sequence: its stages (with `runs=N` expanded), join keys,
//! `until` and `maxspan`. The matching state lives in [`crate::engine`].

use crate::ast::{KeyField, SequenceQuery};
use crate::compile::{CompileError, Compiled, compile_query};
use crate::value::FieldPath;

/// One join key field of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    pub path: FieldPath,
    /// `?field`: a missing value joins as null instead of keeping the event out.
    pub optional: bool,
}

/// One stage after `runs` expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqStage {
    /// Index into [`CompiledSequence::matchers`]: the stages a `runs=N`
    /// term expands to share one matcher, so an event is tested once.
    pub matcher: usize,
    pub missing: bool,
}

#[derive(Debug, Clone)]
pub struct CompiledSequence {
    /// One per written stage (and the until stage last, if any).
    pub matchers: Vec<Compiled>,
    /// The join keys of each matcher: the shared `by` keys, then its own.
    pub keys: Vec<Vec<KeyPath>>,
    pub stages: Vec<SeqStage>,
    pub until: Option<usize>,
    pub maxspan_ns: Option<i64>,
    /// A key position that is `process.entity_id` in every stage: partial
    /// sequences keyed on it cannot advance once that process has exited.
    pub entity_key: Option<usize>,
}

impl CompiledSequence {
    pub fn key_count(&self) -> usize {
        self.keys.first().map_or(0, Vec::len)
    }

    /// The expanded stages that use `matcher`, highest first (the order an
    /// event is offered to them, so it never advances one partial sequence twice).
    pub fn stages_of(&self, matcher: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.stages.len())
            .rev()
            .filter(move |s| self.stages[*s].matcher == matcher)
    }

    /// Every field the sequence reads, join keys included.
    pub fn fields<'a>(&'a self, out: &mut Vec<&'a FieldPath>) {
        for m in &self.matchers {
            m.root.fields(out);
        }
        for k in self.keys.iter().flatten() {
            out.push(&k.path);
        }
    }
}

fn key_paths(shared: &[KeyField], own: &[KeyField]) -> Vec<KeyPath> {
    shared
        .iter()
        .chain(own)
        .map(|k| KeyPath {
            path: FieldPath::new(k.path.clone()),
            optional: k.optional,
        })
        .collect()
}

pub fn compile_sequence(q: &SequenceQuery) -> Result<CompiledSequence, CompileError> {
    let mut matchers = Vec::new();
    let mut keys = Vec::new();
    let mut stages = Vec::new();
    let mut stage_pos = Vec::new();
    for st in &q.stages {
        let m = matchers.len();
        matchers.push(compile_query(&st.query)?);
        keys.push(key_paths(&q.by, &st.by));
        stage_pos.push(st.pos);
        for _ in 0..st.runs {
            stages.push(SeqStage {
                matcher: m,
                missing: st.missing,
            });
        }
    }
    let until = match &q.until {
        Some(st) => {
            matchers.push(compile_query(&st.query)?);
            keys.push(key_paths(&q.by, &st.by));
            stage_pos.push(st.pos);
            Some(matchers.len() - 1)
        }
        None => None,
    };
    let expected = keys[0].len();
    if let Some(i) = keys.iter().position(|k| k.len() != expected) {
        return Err(CompileError::compile(
            stage_pos[i],
            format!(
                "inconsistent number of join keys: the first stage has {expected}, this one has {}",
                keys[i].len()
            ),
        ));
    }
    let entity_key = (0..expected).find(|p| {
        keys.iter()
            .all(|k| k[*p].path.dotted() == "process.entity_id" && !k[*p].optional)
    });
    Ok(CompiledSequence {
        matchers,
        keys,
        stages,
        until,
        maxspan_ns: q.maxspan_ms.map(|ms| (ms as i64).saturating_mul(1_000_000)),
        entity_key,
    })
}
