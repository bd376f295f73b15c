//! netidx-archive's side of the peer harness (bench/peers/README.md): writes a workload
//! file (bench/peers/workload-file.ts) into one archive file and reads it back, printing
//! one JSON object per phase on stdout.
//!
//!   netidx-peer write <workload> <archive> <flush-interval-ms>
//!   netidx-peer read  <archive> <seeks>
//!
//! The write phase does what netidx's recorder does with its default configuration
//! (netidx-archive's config.rs and recorder/record.rs): one delta batch per workload batch,
//! an image of every path's last value each 64 MiB of archive, a flush (two msyncs: the
//! data, then the committed length) each 65534 pages or each flush interval, and one at
//! the end. The clock is the workload's, not the wall clock.
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use netidx::{
    path::Path,
    subscriber::{Event, Value},
};
use netidx_archive::logfile::{ArchiveReader, ArchiveWriter, BatchItem, Cursor, Id, Seek, BATCH_POOL};
use std::{
    env, fs,
    time::{Duration, Instant},
};

/// netidx-archive's config::file::default_image_frequency.
const IMAGE_FREQUENCY_BYTES: usize = 67_108_864;
/// netidx-archive's config::file::default_flush_frequency, in pages.
const FLUSH_FREQUENCY_PAGES: usize = 65_534;
/// Batches asked of read_deltas at a time by the sequential read.
const READ_BATCHES_PER_CALL: usize = 1_000;
const WORKLOAD_MAGIC: &[u8] = b"TPDWKLD1";

struct Workload {
    paths: Vec<String>,
    pool: Vec<(Vec<u32>, Vec<f64>)>,
    ts_us: Vec<f64>,
}

struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.at + n > self.buf.len() {
            bail!("workload file truncated at byte {}", self.at)
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into()?))
    }
}

fn read_workload(file: &str) -> Result<Workload> {
    let buf = fs::read(file).with_context(|| format!("reading {file}"))?;
    let mut b = Bytes { buf: &buf, at: 0 };
    if b.take(8)? != WORKLOAD_MAGIC {
        bail!("{file}: not a workload file")
    }
    let mut paths = Vec::new();
    for _ in 0..b.u32()? {
        let len = b.u32()? as usize;
        paths.push(String::from_utf8(b.take(len)?.to_vec())?);
    }
    let mut pool = Vec::new();
    for _ in 0..b.u32()? {
        let n = b.u32()? as usize;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let id = b.u32()?;
            if id as usize >= paths.len() {
                bail!("{file}: path id {id} out of range")
            }
            ids.push(id);
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(b.f64()?);
        }
        pool.push((ids, values));
    }
    let mut ts_us = Vec::new();
    for _ in 0..b.u32()? {
        ts_us.push(b.f64()?);
    }
    if b.at != buf.len() || pool.is_empty() {
        bail!("{file}: trailing bytes or empty pool")
    }
    Ok(Workload { paths, pool, ts_us })
}

fn at_us(us: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us as i64).expect("timestamp in range")
}

/// Peak and current resident set from /proc/self/status, in MiB.
fn rss_json() -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    format!(
        "{{\"peakMB\":{:.0},\"anonMB\":{:.0},\"fileMB\":{:.0}}}",
        kb("VmHWM:") / 1024.0,
        kb("RssAnon:") / 1024.0,
        kb("RssFile:") / 1024.0
    )
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * xs.len() as f64).floor() as usize;
    (xs[i.min(xs.len() - 1)] * 1000.0).round() / 1000.0
}

/// CPU time of every thread of this process so far, in seconds: the first field of each
/// /proc/self/task/<tid>/schedstat (ns on a CPU), as measure.ts cpuSecs does for the
/// TypeScript sides.
fn cpu_secs() -> f64 {
    let mut ns = 0u64;
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
                ns += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    ns as f64 / 1e9
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn write_image(a: &mut ArchiveWriter, ids: &[Id], last: &[Option<f64>], ts: DateTime<Utc>) -> Result<()> {
    let mut b = BATCH_POOL.take();
    for (i, v) in last.iter().enumerate() {
        if let Some(v) = v {
            b.push(BatchItem(ids[i], Event::Update(Value::F64(*v))));
        }
    }
    a.add_batch(true, ts, &b)
}

fn write(workload: &str, file: &str, flush_interval_ms: u64) -> Result<()> {
    let w = read_workload(workload)?;
    let _ = fs::remove_file(file);
    let paths: Vec<Path> = w.paths.iter().map(|p| Path::from(p.clone())).collect();
    let flush_interval = Duration::from_millis(flush_interval_ms);
    let mut a = ArchiveWriter::open(file)?;
    let c0 = cpu_secs();
    let t0 = Instant::now();
    a.add_paths(paths.iter())?;
    let ids: Vec<Id> = paths.iter().map(|p| a.id_for_path(p).expect("added")).collect();
    let flush_bytes = a.block_size() * FLUSH_FREQUENCY_PAGES;
    let mut last: Vec<Option<f64>> = vec![None; paths.len()];
    let (mut last_image, mut last_flush, mut last_flush_at) = (a.len(), a.len(), Instant::now());
    let (mut updates, mut images, mut flushes) = (0usize, 0usize, 0usize);
    for (i, t) in w.ts_us.iter().enumerate() {
        let (pids, values) = &w.pool[i % w.pool.len()];
        let mut b = BATCH_POOL.take();
        for (id, v) in pids.iter().zip(values.iter()) {
            last[*id as usize] = Some(*v);
            b.push(BatchItem(ids[*id as usize], Event::Update(Value::F64(*v))));
        }
        updates += pids.len();
        let ts = at_us(*t);
        a.add_batch(false, ts, &b)?;
        if a.len() - last_image >= IMAGE_FREQUENCY_BYTES {
            write_image(&mut a, &ids, &last, ts)?;
            last_image = a.len();
            images += 1;
        }
        if a.len() - last_flush >= flush_bytes || last_flush_at.elapsed() >= flush_interval {
            a.flush()?;
            (last_flush, last_flush_at) = (a.len(), Instant::now());
            flushes += 1;
        }
    }
    a.flush()?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c0;
    let bytes = a.len();
    drop(a);
    let file_bytes = fs::metadata(file)?.len();
    println!(
        "{{\"updates\":{updates},\"batches\":{},\"secs\":{secs:.3},\"updatesPerSec\":{:.0},\"cpuSecs\":{cpu:.3},\"updatesPerCpuSec\":{:.0},\"bytes\":{bytes},\"fileBytes\":{file_bytes},\"bytesPerUpdate\":{:.3},\"images\":{images},\"flushes\":{},\"rss\":{}}}",
        w.ts_us.len(),
        updates as f64 / secs,
        updates as f64 / cpu,
        bytes as f64 / updates as f64,
        flushes + 1,
        rss_json()
    );
    Ok(())
}

fn read(file: &str, seeks_file: &str) -> Result<()> {
    let seeks: Vec<f64> = fs::read_to_string(seeks_file)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.trim().parse::<f64>())
        .collect::<Result<_, _>>()?;
    let t0 = Instant::now();
    let r = ArchiveReader::open(file)?;
    let open_ms = ms(t0.elapsed());
    let (mut seek_ms, mut seek_state_ms) = (Vec::new(), Vec::new());
    let mut state_paths_min = usize::MAX;
    for t in &seeks {
        let s0 = Instant::now();
        let mut c = Cursor::new();
        r.seek(&mut c, Seek::Absolute(at_us(*t)));
        let s1 = Instant::now();
        let image = r.build_image(None, &c)?;
        let (_, first) = r.read_deltas(None, &mut c, 1)?;
        let s2 = Instant::now();
        seek_ms.push(ms(s1 - s0));
        seek_state_ms.push(ms(s2 - s0));
        state_paths_min = state_paths_min.min(image.len());
        drop(first);
    }
    let rss_after_seeks = rss_json();
    let first = read_all(&r)?;
    let warm = read_all(&r)?;
    println!(
        "{{\"openMs\":{open_ms:.3},\"seekMs\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"seekStateFirstBatchMs\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"statePathsMin\":{state_paths_min},\"rssAfterOpenSeek\":{rss_after_seeks},\"readFirstPass\":{first},\"read\":{warm},\"rss\":{}}}",
        pct(&mut seek_ms, 50.0),
        pct(&mut seek_ms, 99.0),
        pct(&mut seek_ms, 100.0),
        pct(&mut seek_state_ms, 50.0),
        pct(&mut seek_state_ms, 99.0),
        pct(&mut seek_state_ms, 100.0),
        rss_json()
    );
    Ok(())
}

/// Every delta batch from the beginning, touching every value; the JSON of one pass.
fn read_all(r: &ArchiveReader) -> Result<String> {
    let mut c = Cursor::new();
    let (mut updates, mut batches, mut sum) = (0usize, 0usize, 0f64);
    let c0 = cpu_secs();
    let t0 = Instant::now();
    loop {
        let (_, mut got) = r.read_deltas(None, &mut c, READ_BATCHES_PER_CALL)?;
        if got.is_empty() {
            break;
        }
        for (_, b) in got.drain(..) {
            batches += 1;
            for BatchItem(_, ev) in b.iter() {
                if let Event::Update(Value::F64(v)) = ev {
                    sum += *v;
                }
                updates += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - c0;
    Ok(format!(
        "{{\"updates\":{updates},\"batches\":{batches},\"secs\":{secs:.3},\"updatesPerSec\":{:.0},\"cpuSecs\":{cpu:.3},\"updatesPerCpuSec\":{:.0},\"valueSum\":{sum:?}}}",
        updates as f64 / secs,
        updates as f64 / cpu
    ))
}

fn main() -> Result<()> {
    let args: Vec<String> = env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [_, "write", workload, file, flush_ms] => write(workload, file, flush_ms.parse()?),
        [_, "read", file, seeks] => read(file, seeks),
        _ => bail!("usage: netidx-peer write <workload> <archive> <flush-interval-ms> | read <archive> <seeks>"),
    }
}
