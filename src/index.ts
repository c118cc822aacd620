/**
 * effect-kv: a string key-value store as an Effect service, with interchangeable backends.
 *
 * Programs ask for `BaseKvStoreService` and are given `memoryKvStore` in development and tests, or a Redis layer from
 * `effect-kv/redis` in production. The conformance suite that proves a backend keeps the contract is in
 * `effect-kv/testing`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * from "./BaseKvStore.ts"

/**
 * @since 0.1.0
 */
export * from "./MemoryKvStore.ts"

/**
 * @since 0.1.0
 */
export * from "./KvViews.ts"

/**
 * @since 0.1.0
 */
export * from "./SchemaStore.ts"

/**
 * @since 0.1.0
 */
export * from "./EffectKeyValueStore.ts"

/**
 * @since 0.1.0
 */
export * from "./EffectPersistence.ts"

/**
 * @since 0.1.0
 */
export * from "./KvMetrics.ts"

/**
 * @since 0.1.0
 */
export * from "./KvRateLimiterStore.ts"
