/**
 * Which of Go's two amd64 Exp paths (goexp.ts) a Prometheus on this host takes: the fused
 * one when the CPU has AVX and FMA (Go's math.useFMA, from cpu.X86), read once from Linux's
 * /proc/cpuinfo flags. Elsewhere (no such file, another architecture) the fused path, as on
 * any x86 server of the last ten years. TAPEDECK_GO_EXP_FMA=0 or 1 says it outright (a
 * Prometheus on another machine than Tapedeck's).
 */
import { readFileSync } from 'node:fs';

function detect(): boolean {
  const given = process.env.TAPEDECK_GO_EXP_FMA;
  if (given === '0' || given === '1') return given === '1';
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'))?.[1]?.split(/\s+/) ?? [];
    if (flags.length === 0) return true;
    return flags.includes('avx') && flags.includes('fma');
  } catch {
    return true;
  }
}

export const HOST_GO_EXP_FMA: boolean = detect();
