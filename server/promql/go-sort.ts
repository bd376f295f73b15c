/**
 * Go's sort.Sort as Prometheus 2.42 runs it (Debian's build: Go 1.19, src/sort/sort.go and
 * zsortinterface.go): pattern-defeating quicksort, insertion sort up to 12 elements, heapsort
 * after too many bad pivots. Ported step for step, quirks included (partialInsertionSort's
 * shift reaches below its range), so that with a `less` that is no strict weak order (NaN:
 * sort's and sort_desc's less answers true both ways) the elements end where Go puts them.
 * Deterministic: breakPatterns' xorshift is seeded by the length.
 */

/** Go's sort.Interface over indices of the caller's array. */
export interface GoSortable {
  readonly less: (i: number, j: number) => boolean;
  readonly swap: (i: number, j: number) => void;
}

const MAX_INSERTION = 12;
const SHORTEST_NINTHER = 50;
const MAX_SWAPS = 4 * 3;
const PARTIAL_MAX_STEPS = 5;
const PARTIAL_SHORTEST_SHIFTING = 50;
const U64 = (1n << 64n) - 1n;

/** choosePivot's hint (Go's sortedHint). */
type Hint = 'unknown' | 'increasing' | 'decreasing';

/** bits.Len(uint(n)) for 0 <= n < 2^32: the bits needed to write n. */
function bitsLen(n: number): number {
  return 32 - Math.clz32(n);
}

/** sort.Sort(data) of n elements. */
export function goSort(n: number, data: GoSortable): void {
  if (n <= 1) return;
  pdqsort(data, 0, n, bitsLen(n));
}

function insertionSort(d: GoSortable, a: number, b: number): void {
  for (let i = a + 1; i < b; i++) {
    for (let j = i; j > a && d.less(j, j - 1); j--) d.swap(j, j - 1);
  }
}

function siftDown(d: GoSortable, lo: number, hi: number, first: number): void {
  let root = lo;
  for (;;) {
    let child = 2 * root + 1;
    if (child >= hi) return;
    if (child + 1 < hi && d.less(first + child, first + child + 1)) child++;
    if (!d.less(first + root, first + child)) return;
    d.swap(first + root, first + child);
    root = child;
  }
}

function heapSort(d: GoSortable, a: number, b: number): void {
  const first = a;
  const hi = b - a;
  for (let i = Math.trunc((hi - 1) / 2); i >= 0; i--) siftDown(d, i, hi, first);
  for (let i = hi - 1; i >= 0; i--) {
    d.swap(first, first + i);
    siftDown(d, 0, i, first);
  }
}

function pdqsort(d: GoSortable, a: number, b: number, limit: number): void {
  let wasBalanced = true;
  let wasPartitioned = true;
  for (;;) {
    const length = b - a;
    if (length <= MAX_INSERTION) {
      insertionSort(d, a, b);
      return;
    }
    if (limit === 0) {
      heapSort(d, a, b);
      return;
    }
    if (!wasBalanced) {
      breakPatterns(d, a, b);
      limit--;
    }
    let [pivot, hint] = choosePivot(d, a, b);
    if (hint === 'decreasing') {
      reverseRange(d, a, b);
      pivot = b - 1 - (pivot - a);
      hint = 'increasing';
    }
    if (wasBalanced && wasPartitioned && hint === 'increasing' && partialInsertionSort(d, a, b)) return;
    if (a > 0 && !d.less(a - 1, pivot)) {
      a = partitionEqual(d, a, b, pivot);
      continue;
    }
    const [mid, alreadyPartitioned] = partition(d, a, b, pivot);
    wasPartitioned = alreadyPartitioned;
    const leftLen = mid - a;
    const rightLen = b - mid;
    const balanceThreshold = Math.trunc(length / 8);
    if (leftLen < rightLen) {
      wasBalanced = leftLen >= balanceThreshold;
      pdqsort(d, a, mid, limit);
      a = mid + 1;
    } else {
      wasBalanced = rightLen >= balanceThreshold;
      pdqsort(d, mid + 1, b, limit);
      b = mid;
    }
  }
}

function partition(d: GoSortable, a: number, b: number, pivot: number): [number, boolean] {
  d.swap(a, pivot);
  let i = a + 1;
  let j = b - 1;
  while (i <= j && d.less(i, a)) i++;
  while (i <= j && !d.less(j, a)) j--;
  if (i > j) {
    d.swap(j, a);
    return [j, true];
  }
  d.swap(i, j);
  i++;
  j--;
  for (;;) {
    while (i <= j && d.less(i, a)) i++;
    while (i <= j && !d.less(j, a)) j--;
    if (i > j) break;
    d.swap(i, j);
    i++;
    j--;
  }
  d.swap(j, a);
  return [j, false];
}

function partitionEqual(d: GoSortable, a: number, b: number, pivot: number): number {
  d.swap(a, pivot);
  let i = a + 1;
  let j = b - 1;
  for (;;) {
    while (i <= j && !d.less(a, i)) i++;
    while (i <= j && d.less(a, j)) j--;
    if (i > j) break;
    d.swap(i, j);
    i++;
    j--;
  }
  return i;
}

function partialInsertionSort(d: GoSortable, a: number, b: number): boolean {
  let i = a + 1;
  for (let step = 0; step < PARTIAL_MAX_STEPS; step++) {
    while (i < b && !d.less(i, i - 1)) i++;
    if (i === b) return true;
    if (b - a < PARTIAL_SHORTEST_SHIFTING) return false;
    d.swap(i, i - 1);
    // Go's bound is 1, not a + 1: the smaller one may move below a.
    if (i - a >= 2) {
      for (let j = i - 1; j >= 1; j--) {
        if (!d.less(j, j - 1)) break;
        d.swap(j, j - 1);
      }
    }
    if (b - i >= 2) {
      for (let j = i + 1; j < b; j++) {
        if (!d.less(j, j - 1)) break;
        d.swap(j, j - 1);
      }
    }
  }
  return false;
}

function breakPatterns(d: GoSortable, a: number, b: number): void {
  const length = b - a;
  if (length < 8) return;
  let random = BigInt(length);
  const mask = BigInt(2 ** bitsLen(length) - 1);
  const from = a + Math.trunc(length / 4) * 2 - 1;
  for (let idx = from; idx <= from + 2; idx++) {
    // Go 1.19's xorshift, (13, 17, 5) on a uint64 (later Go's is (13, 7, 17)).
    random ^= (random << 13n) & U64;
    random ^= random >> 17n;
    random ^= (random << 5n) & U64;
    let other = Number(random & mask);
    if (other >= length) other -= length;
    d.swap(idx, a + other);
  }
}

function choosePivot(d: GoSortable, a: number, b: number): [number, Hint] {
  const l = b - a;
  const swaps = { n: 0 };
  let i = a + Math.trunc(l / 4);
  let j = a + Math.trunc(l / 4) * 2;
  let k = a + Math.trunc(l / 4) * 3;
  if (l >= 8) {
    if (l >= SHORTEST_NINTHER) {
      i = median(d, i - 1, i, i + 1, swaps);
      j = median(d, j - 1, j, j + 1, swaps);
      k = median(d, k - 1, k, k + 1, swaps);
    }
    j = median(d, i, j, k, swaps);
  }
  return [j, swaps.n === 0 ? 'increasing' : swaps.n === MAX_SWAPS ? 'decreasing' : 'unknown'];
}

/** The index of the median of data[a], data[b], data[c], counting the swaps of order2. */
function median(d: GoSortable, a: number, b: number, c: number, swaps: { n: number }): number {
  const order2 = (x: number, y: number): [number, number] => {
    if (d.less(y, x)) {
      swaps.n++;
      return [y, x];
    }
    return [x, y];
  };
  [a, b] = order2(a, b);
  [b, c] = order2(b, c);
  [a, b] = order2(a, b);
  return b;
}

function reverseRange(d: GoSortable, a: number, b: number): void {
  for (let i = a, j = b - 1; i < j; i++, j--) d.swap(i, j);
}
