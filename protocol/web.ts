/**
 * What the web player takes from protocol/, bundled for the browser by
 * scripts/build-web.mjs: the server's glob matcher, the one JSON value codec and the close
 * codes, so the page matches paths, reads values and reads a closed stream exactly as the
 * server means them.
 */
export * from './glob.js';
export { valueFromJson, valueToDisplayText, valueToJsonText, visibleText } from './value-json.js';
export { CLOSE_CODES, closeIsFinal } from './close-codes.js';
export { PROTOCOL_LIMITS } from './limits.js';
