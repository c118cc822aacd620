/**
 * The tus upload server as modules: mount `Tus.layer` on your `HttpRouter`, provide `Authorization` (your rule, from
 * the request to an owner id), `Hooks`, `UploadServerConfig` and `Server.layerServices` on an effect-kv store. See
 * `examples/mount.ts`; `main.ts` is the program `npm start` runs on the same modules.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Authorization from "./Authorization.ts"

/**
 * @since 0.1.0
 */
export * as Cleanup from "./Cleanup.ts"

/**
 * @since 0.1.0
 */
export * as Config from "./Config.ts"

/**
 * @since 0.1.0
 */
export * as Events from "./Events.ts"

/**
 * @since 0.1.0
 */
export * as Files from "./Files.ts"

/**
 * @since 0.1.0
 */
export * as Hooks from "./Hooks.ts"

/**
 * @since 0.1.0
 */
export * as Jwt from "./Jwt.ts"

/**
 * @since 0.1.0
 */
export * as Limits from "./Limits.ts"

/**
 * @since 0.1.0
 */
export * as Lock from "./Lock.ts"

/**
 * @since 0.1.0
 */
export * as Quota from "./Quota.ts"

/**
 * @since 0.1.0
 */
export * as Server from "./Server.ts"

/**
 * @since 0.1.0
 */
export * as Tus from "./Tus.ts"

/**
 * @since 0.1.0
 */
export * as Uploads from "./Uploads.ts"
