/** Source types by the name used in config (`"type": "csv-matrix"`). A new source: one file, one line here. */
import { csvMatrixSource } from './csv-matrix.js';
import { httpJsonSource } from './http-json.js';
import { kafkaSource } from './kafka.js';
import { promScrapeSource } from './prom-scrape.js';
import { pushSource } from './push.js';
import { remoteWriteSource } from './remote-write.js';
import type { SourceFactory } from './source.js';

export const SOURCE_TYPES: Readonly<Record<string, SourceFactory>> = {
  [csvMatrixSource.type]: csvMatrixSource,
  [httpJsonSource.type]: httpJsonSource,
  [pushSource.type]: pushSource,
  [kafkaSource.type]: kafkaSource,
  [remoteWriteSource.type]: remoteWriteSource,
  [promScrapeSource.type]: promScrapeSource,
};
