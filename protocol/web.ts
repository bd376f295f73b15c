/**
 * What the web player takes from protocol/, bundled for the browser by
 * scripts/build-web.mjs: the server's glob matcher and the one JSON value codec, so the
 * page matches paths and reads values exactly as the server does.
 */
export * from './glob.js';
export { valueFromJson, valueToJsonText } from './value-json.js';
