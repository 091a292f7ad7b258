/**
 * The package's entry (`import … from 'myelin'`): the predictor and plugin contracts of `core/`, and
 * the typed client of a daemon (`MyelinClient`, serving/client/). Inside a replica, a predictor's
 * `require('myelin')` gets core's API only (adapters/fs/tsx-user-module-importer.ts), so a replica does
 * not load the client.
 */
export * from './core/index.js';
export * from './serving/client/index.js';
