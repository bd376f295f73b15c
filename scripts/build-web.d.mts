// Types of build-web.mjs, for the server and the tests that import it.
export const WEB_PROTOCOL_ENTRY: string;
export const WEB_PROTOCOL_OUT: string;
export const WEB_PROTOCOL_SOURCES: string[];
export function webProtocolFresh(out?: string): Promise<boolean>;
export function buildWebProtocol(out?: string): Promise<string>;
