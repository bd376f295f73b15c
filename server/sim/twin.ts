/**
 * Twin-like JSON views of a simulated fabric snapshot, in the spirit of a network digital
 * twin's flow and graph APIs: a leaf-spine topology whose link loads follow the switches'
 * bandwidth, and a fixed set of flows whose rates follow their source leaf. Pure.
 */
import type { Snapshot } from './simulator.js';

const FLOWS = 16;

function roles(snap: Snapshot): { spines: string[]; leaves: string[] } {
  const ids = [...snap.rows.keys()];
  const nSpines = Math.max(1, Math.floor(ids.length / 8));
  return { spines: ids.slice(0, nSpines), leaves: ids.slice(nSpines) };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export function twinGraph(snap: Snapshot): { nodes: unknown[]; edges: unknown[] } {
  const { spines, leaves } = roles(snap);
  const nodes = [...spines.map((id) => ({ id, role: 'spine' })), ...leaves.map((id) => ({ id, role: 'leaf' }))].map((n) => ({
    ...n,
    up: true,
    temperature_c: (snap.rows.get(n.id) as number[])[7],
  }));
  const edges: unknown[] = [];
  for (const leaf of leaves) {
    const bw = (snap.rows.get(leaf) as number[])[0] as number;
    for (const spine of spines) {
      const load = round1(bw / spines.length);
      edges.push({ src: leaf, dst: spine, capacity_gbps: 100, load_gbps: load, utilization_pct: round1(Math.min(100, load)) });
    }
  }
  return { nodes, edges };
}

export function twinFlows(snap: Snapshot, seed: number): { flows: unknown[] } {
  const { spines, leaves } = roles(snap);
  const hosts = leaves.length > 1 ? leaves : [...spines, ...leaves];
  const flows: unknown[] = [];
  for (let f = 0; f < FLOWS && hosts.length > 1; f++) {
    const a = (seed * 7 + f * 13) % hosts.length;
    const b = (a + 1 + ((f * 5) % (hosts.length - 1))) % hosts.length;
    const src = hosts[a] as string;
    const dst = hosts[b] as string;
    const spine = spines[f % spines.length] as string;
    const bw = (snap.rows.get(src) as number[])[0] as number;
    flows.push({
      id: f,
      src_ip: `10.0.${a}.${10 + f}`,
      dst_ip: `10.0.${b}.${20 + f}`,
      src_port: 40000 + f,
      dst_port: f % 2 === 0 ? 443 : 4791,
      protocol: f % 2 === 0 ? 'tcp' : 'udp',
      path: [src, spine, dst],
      rate_bps: Math.round(bw * 1e9 * (0.01 + (f % 4) * 0.005)),
    });
  }
  return { flows };
}
