//! Counting the records of a lane by kind without decoding them: each record's envelope is
//! walked and its kind read, its body skipped. What a summary of a log needs of its bulk lane
//! (millions of log lines), at the cost of decompressing it.

use std::collections::BTreeMap;

use super::{Damage, LaneIter, LogReader, Result};

/// Records of one lane by kind, and the damage met.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindCounts {
    /// Records by kind (as written; kinds this version does not know too).
    pub kinds: BTreeMap<String, u64>,
    /// Damage met (tolerant readers); a strict reader returns the first as an error.
    pub damage: Vec<Damage>,
}

impl LogReader {
    /// Counts the records of lane `lane` by kind, decompressing its sections but decoding no
    /// record body. Tolerant readers skip damaged sections (listed in the result) as
    /// [`LogReader::records`] does.
    pub fn kind_counts(&self, lane: u8) -> Result<KindCounts> {
        // Decompressed on a thread of its own (when reading ahead) while records are walked.
        let mut it = LaneIter::with(self, lane, 0, self.read_ahead);
        let mut kinds: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for i in 0..self.frames.len() {
            match it.load(i) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(d) => {
                    if let Some(Err(e)) = it.fail(d) {
                        return Err(e);
                    }
                    continue;
                }
            }
            let f = self.frames[i];
            let mut c = crate::wire::Cursor::at(&it.plain, 0);
            for k in 0..it.loaded_count {
                match c.kind() {
                    Ok(kind) => match kinds.get_mut(kind) {
                        Some(n) => *n += 1,
                        None => {
                            kinds.insert(kind.to_vec(), 1);
                        }
                    },
                    Err(e) => {
                        let d = Damage {
                            kind: super::DamageKind::Undecodable,
                            offset: f.offset,
                            bytes: 0,
                            records: Some(u64::from(it.loaded_count - k)),
                            what: format!("record {} of the section does not decode: {e}", k + 1),
                        };
                        if let Some(Err(e)) = it.fail(d) {
                            return Err(e);
                        }
                        break;
                    }
                }
            }
        }
        Ok(KindCounts {
            kinds: kinds
                .into_iter()
                .map(|(k, n)| (String::from_utf8_lossy(&k).into_owned(), n))
                .collect(),
            damage: std::mem::take(&mut it.damage),
        })
    }
}
