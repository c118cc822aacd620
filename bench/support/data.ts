/**
 * The benchmark data: keys like `upload:<uuid>` and 200-character values, derived from an index so that every child
 * process (and the Redis filler) regenerates exactly the same keyspace without passing it around.
 *
 * Every string is built from a Buffer with `toString("latin1")`, which yields a flat, distinct heap string. Template
 * concatenation would give cons strings sharing the template, which halves the measured memory and makes lookups
 * cheaper than they are for keys that arrive from outside (see the memory notes in BENCHMARKS.md).
 */

const HEX = Buffer.from("0123456789abcdef", "latin1")
const UUID_LENGTH = 36
const VALUE_LENGTH = 200

/** murmur3's 32-bit finaliser: a bijection on 32 bits, so distinct indices give distinct first words. */
const mix = (value: number): number => {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const words = new Uint32Array(4)

const fillWords = (index: number): void => {
  const base = Math.imul(index, 0x9e3779b1) >>> 0
  words[0] = mix(base)
  words[1] = mix(base ^ 0x7f4a7c15)
  words[2] = mix(base ^ 0x2545f491)
  words[3] = mix(base ^ 0x6a09e667)
}

/** Writes a v4-shaped UUID derived from `index` at `offset`. */
const writeUuid = (buffer: Buffer, offset: number, index: number): void => {
  fillWords(index)
  let at = offset
  for (let nibble = 0; nibble < 32; nibble++) {
    if (nibble === 8 || nibble === 12 || nibble === 16 || nibble === 20) buffer[at++] = 0x2d
    const word = words[nibble >>> 3]
    let digit = (word >>> ((nibble & 7) * 4)) & 15
    if (nibble === 12) digit = 4
    if (nibble === 16) digit = 8 | (digit & 3)
    buffer[at++] = HEX[digit]
  }
}

const keyBuffers = new Map<string, Buffer>()

/** `<prefix><uuid>`: the uuid is a function of `index`. */
export const keyAt = (prefix: string, index: number): string => {
  let buffer = keyBuffers.get(prefix)
  if (buffer === undefined) {
    buffer = Buffer.alloc(prefix.length + UUID_LENGTH)
    buffer.write(prefix, 0, "latin1")
    keyBuffers.set(prefix, buffer)
  }
  writeUuid(buffer, prefix.length, index)
  return buffer.toString("latin1")
}

// A fixed run of letters and digits: a value never looks like JSON, a number or a boolean, so unstorage's `destr`
// and Keyv's envelope hand back the very string that was stored.
const valueBuffer = (() => {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  const buffer = Buffer.alloc(VALUE_LENGTH)
  let state = 0x12345678
  for (let i = 0; i < VALUE_LENGTH; i++) {
    state = mix(state + i)
    buffer[i] = alphabet.charCodeAt(state % alphabet.length)
  }
  buffer[0] = 0x76 // "v"
  return buffer
})()

/** A 200-character value, distinct for every `index` (its uuid is stamped into it). */
export const valueAt = (index: number): string => {
  writeUuid(valueBuffer, 1, index)
  return valueBuffer.toString("latin1")
}

/** The bulk keys of a keyspace. */
export const BULK_PREFIX = "upload:"

/** Where the key families live in index space: far apart, so they never collide. */
export const FRESH_BASE = 0x40000000
export const MISSING_BASE = 0x80000000
const GROUP_BASE = 0x20000000
const VALUE_POOL_BASE = 0xc0000000

/** A prefix under which exactly `size` keys exist. Bulk uuids are hex, so nothing else starts with `upload:g`. */
export const groupPrefix = (size: number): string => `upload:g${size}:`

/** The keys listed under `groupPrefix(size)`, in insertion order. */
export const groupKeys = (size: number): Array<string> =>
  Array.from({ length: size }, (_, i) => keyAt(groupPrefix(size), GROUP_BASE + size * 16 + i))

/**
 * A keyspace of `total` keys: `total - sum(groups)` bulk keys `upload:<uuid>` (indices 0..bulk-1) plus, for every
 * group size g, g keys under `upload:g<g>:`.
 */
export interface Layout {
  readonly total: number
  readonly bulk: number
  readonly groups: ReadonlyArray<number>
}

export const layout = (total: number, groups: ReadonlyArray<number>): Layout => {
  const bulk = total - groups.reduce((sum, size) => sum + size, 0)
  if (bulk < 1000) throw new Error(`a keyspace of ${total} keys is too small for groups ${groups.join(", ")}`)
  return { total, bulk, groups }
}

/** Every key of a layout with its value, bulk first. Values of group keys use the key's own index too. */
export function* entries(of: Layout): Generator<readonly [string, string]> {
  for (let i = 0; i < of.bulk; i++) yield [keyAt(BULK_PREFIX, i), valueAt(i)]
  for (const size of of.groups) {
    const keys = groupKeys(size)
    for (let i = 0; i < keys.length; i++) yield [keys[i], valueAt(GROUP_BASE + size * 16 + i)]
  }
}

/** A deterministic pseudo-random sequence (mulberry32), for shuffles that every process repeats identically. */
export const random = (seed: number): () => number => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` distinct bulk indices in random order (a partial Fisher-Yates shuffle of 0..bulk-1). */
export const sampleIndices = (bulk: number, count: number, seed: number): Array<number> => {
  const next = random(seed)
  const pool = Array.from({ length: bulk }, (_, i) => i)
  const taken = Math.min(count, bulk)
  for (let i = 0; i < taken; i++) {
    const j = i + Math.floor(next() * (bulk - i))
    const swap = pool[i]
    pool[i] = pool[j]
    pool[j] = swap
  }
  return pool.slice(0, taken)
}

/** Distinct existing bulk keys in random order: the keys read, overwritten and deleted. */
export const existingKeys = (of: Layout, count: number, seed = 1): Array<string> =>
  sampleIndices(of.bulk, count, seed).map((i) => keyAt(BULK_PREFIX, i))

/** Keys that are in no layout, for inserts. */
export const freshKeys = (count: number): Array<string> =>
  Array.from({ length: count }, (_, i) => keyAt(BULK_PREFIX, FRESH_BASE + i))

/** Keys that are in no layout and never inserted, for deletes of missing keys. */
export const missingKeys = (count: number): Array<string> =>
  Array.from({ length: count }, (_, i) => keyAt(BULK_PREFIX, MISSING_BASE + i))

/** A pool of distinct values for writes. */
export const valuePool = (count: number): Array<string> =>
  Array.from({ length: count }, (_, i) => valueAt(VALUE_POOL_BASE + i))
