//! `runs export-metrics`: the run history as one Parquet file, one row per (run, metric), with
//! the run's labels and inputs, so DuckDB, Trino/Athena, ClickHouse or Spark answer questions
//! across thousands of runs without pipetape in the loop. Written with the `parquet` crate's
//! column writers (no Arrow), zstd-compressed, in row groups of [`ROW_GROUP`] rows.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::analysis::metrics::{MetricSet, Unit};

/// The file's schema, as documented in the README.
pub const SCHEMA: &str = "message pipetape_metrics {
  REQUIRED BYTE_ARRAY run_id (UTF8);
  REQUIRED BYTE_ARRAY pipeline (UTF8);
  OPTIONAL BYTE_ARRAY branch (UTF8);
  OPTIONAL BYTE_ARRAY commit (UTF8);
  REQUIRED BYTE_ARRAY outcome (UTF8);
  REQUIRED INT64 started (TIMESTAMP(MICROS,true));
  REQUIRED BYTE_ARRAY metric (UTF8);
  REQUIRED BYTE_ARRAY family (UTF8);
  REQUIRED BYTE_ARRAY unit (UTF8);
  REQUIRED DOUBLE value;
  OPTIONAL BYTE_ARRAY status (UTF8);
  REQUIRED BOOLEAN bad;
  REQUIRED BOOLEAN flapped;
  REQUIRED INT32 attempts;
  OPTIONAL BYTE_ARRAY images (UTF8);
  REQUIRED BYTE_ARRAY labels (UTF8);
  REQUIRED BYTE_ARRAY inputs (UTF8);
}";

/// Rows per row group.
pub const ROW_GROUP: usize = 128 * 1024;

/// The columns of one row group, in schema order.
#[derive(Default)]
struct Columns {
    run_id: Vec<ByteArray>,
    pipeline: Vec<ByteArray>,
    branch: (Vec<ByteArray>, Vec<i16>),
    commit: (Vec<ByteArray>, Vec<i16>),
    outcome: Vec<ByteArray>,
    started: Vec<i64>,
    metric: Vec<ByteArray>,
    family: Vec<ByteArray>,
    unit: Vec<ByteArray>,
    value: Vec<f64>,
    status: (Vec<ByteArray>, Vec<i16>),
    bad: Vec<bool>,
    flapped: Vec<bool>,
    attempts: Vec<i32>,
    images: (Vec<ByteArray>, Vec<i16>),
    labels: Vec<ByteArray>,
    inputs: Vec<ByteArray>,
}

fn ba(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// A run-wide value, shared by every row of the run (a reference count, not a copy).
fn shared(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

fn opt(col: &mut (Vec<ByteArray>, Vec<i16>), v: Option<&bytes::Bytes>) {
    match v {
        Some(v) => {
            col.0.push(ByteArray::from(v.clone()));
            col.1.push(1);
        }
        None => col.1.push(0),
    }
}

impl Columns {
    fn len(&self) -> usize {
        self.run_id.len()
    }

    /// Adds every metric of `set` as a row.
    fn push(&mut self, set: &MetricSet) {
        let branch = set.labels.get("branch").map(|s| shared(s));
        let commit = set
            .labels
            .get("commit")
            .or_else(|| set.inputs.get("commit"))
            .map(|s| shared(s));
        // The images a run ran, as sorted `key=value` lines: equal strings, same images.
        let images: String = set
            .inputs
            .iter()
            .filter(|(k, _)| k.starts_with("image:") || k.starts_with("digest:"))
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let images = Some(shared(&images)).filter(|s| !s.is_empty());
        let labels = shared(&serde_json::to_string(&set.labels).unwrap_or_default());
        let inputs = shared(
            &serde_json::to_string(
                &set.inputs
                    .iter()
                    .filter(|(k, _)| k.as_str() != "history")
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap_or_default(),
        );
        let (run_id, pipeline, outcome) = (
            shared(&set.run_id),
            shared(&set.pipeline),
            shared(&set.outcome),
        );
        let started = set.started_ns / 1000;
        for (k, m) in &set.metrics {
            self.run_id.push(ByteArray::from(run_id.clone()));
            self.pipeline.push(ByteArray::from(pipeline.clone()));
            opt(&mut self.branch, branch.as_ref());
            opt(&mut self.commit, commit.as_ref());
            self.outcome.push(ByteArray::from(outcome.clone()));
            self.started.push(started);
            self.metric.push(ba(&k.to_string()));
            self.family.push(ba(k.family().as_str()));
            self.unit.push(ba(match m.unit {
                Unit::Seconds => "seconds",
                Unit::Count => "count",
            }));
            self.value.push(m.value);
            let status = m.status.as_str();
            if status.is_empty() {
                self.status.1.push(0);
            } else {
                self.status.0.push(ba(status));
                self.status.1.push(1);
            }
            self.bad.push(m.is_bad());
            self.flapped.push(m.flapped);
            self.attempts.push(m.attempts.min(i32::MAX as u32) as i32);
            opt(&mut self.images, images.as_ref());
            self.labels.push(ByteArray::from(labels.clone()));
            self.inputs.push(ByteArray::from(inputs.clone()));
        }
    }
}

fn perr(e: parquet::errors::ParquetError) -> crate::Error {
    crate::Error::Io {
        context: "writing Parquet".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Writes one row per metric of each set to `out`; returns the rows written.
pub fn write<W: Write + Send>(
    out: W,
    sets: impl IntoIterator<Item = MetricSet>,
) -> crate::Result<u64> {
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(perr)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(perr)?))
            .set_created_by(format!("pipetape {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let mut w = SerializedFileWriter::new(out, schema, props).map_err(perr)?;
    let mut cols = Columns::default();
    let mut rows = 0u64;
    let flush = |w: &mut SerializedFileWriter<W>, c: Columns| -> crate::Result<()> {
        if c.len() == 0 {
            return Ok(());
        }
        let mut rg = w.next_row_group().map_err(perr)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(perr)? {
            let r = match i {
                0 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.run_id, None, None),
                1 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.pipeline, None, None),
                2 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.branch.0, Some(&c.branch.1), None),
                3 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.commit.0, Some(&c.commit.1), None),
                4 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.outcome, None, None),
                5 => col.typed::<Int64Type>().write_batch(&c.started, None, None),
                6 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.metric, None, None),
                7 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.family, None, None),
                8 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.unit, None, None),
                9 => col.typed::<DoubleType>().write_batch(&c.value, None, None),
                10 => {
                    col.typed::<ByteArrayType>()
                        .write_batch(&c.status.0, Some(&c.status.1), None)
                }
                11 => col.typed::<BoolType>().write_batch(&c.bad, None, None),
                12 => col.typed::<BoolType>().write_batch(&c.flapped, None, None),
                13 => col
                    .typed::<Int32Type>()
                    .write_batch(&c.attempts, None, None),
                14 => {
                    col.typed::<ByteArrayType>()
                        .write_batch(&c.images.0, Some(&c.images.1), None)
                }
                15 => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.labels, None, None),
                _ => col
                    .typed::<ByteArrayType>()
                    .write_batch(&c.inputs, None, None),
            };
            r.map_err(perr)?;
            col.close().map_err(perr)?;
            i += 1;
        }
        rg.close().map_err(perr)?;
        Ok(())
    };
    for set in sets {
        cols.push(&set);
        rows += set.metrics.len() as u64;
        if cols.len() >= ROW_GROUP {
            flush(&mut w, std::mem::take(&mut cols))?;
        }
    }
    flush(&mut w, cols)?;
    w.close().map_err(perr)?;
    Ok(rows)
}
