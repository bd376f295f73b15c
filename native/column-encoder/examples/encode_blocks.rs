//! Encodes the blocks of a dump (per block: u32 nb, u32 nu, f64 ts[nb], u32 counts[nb],
//! u32 ids[nu], f64 vals[nu], little-endian) `rounds` times; prints ns an update and the
//! payload bytes. For measuring the encoder alone (also under callgrind).
use column_encoder::PayloadEncoder;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("dump");
    let rounds: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(10);
    let rd = |at: &mut usize, n: usize| { let s = &bytes[*at..*at + n]; *at += n; s.to_vec() };
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let nb = u32::from_le_bytes(rd(&mut at, 4).try_into().unwrap()) as usize;
        let nu = u32::from_le_bytes(rd(&mut at, 4).try_into().unwrap()) as usize;
        let ts: Vec<f64> = rd(&mut at, 8 * nb).chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
        let counts: Vec<u32> = rd(&mut at, 4 * nb).chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let ids: Vec<u32> = rd(&mut at, 4 * nu).chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let vals: Vec<u64> = rd(&mut at, 8 * nu).chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        blocks.push((ts, counts, ids, vals));
    }
    let mut enc = PayloadEncoder::new();
    let mut total = 0usize;
    let mut updates = 0usize;
    let t0 = Instant::now();
    for _ in 0..rounds {
        for (ts, counts, ids, vals) in &blocks {
            total += enc.encode(ts, counts, ids, vals).expect("a block").len();
            updates += ids.len();
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / updates as f64;
    println!("{{\"blocks\":{},\"updates\":{},\"nsPerUpdate\":{:.2},\"bytesPerUpdate\":{:.4}}}", blocks.len(), updates, ns, total as f64 / updates as f64);
}
