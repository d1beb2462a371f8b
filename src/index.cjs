// The CommonJS entry point: what `require('typed-pg-ipc')` returns.
//
// It is pgIPC itself, as pg-ipc's module is, so pg-ipc's own pattern works unchanged:
//
//   var pgIPC = require('typed-pg-ipc')
//   var ipc = pgIPC(client)
//
// and every named export of the package is also a property of it (pgIPC, defineChannels, default,
// the error classes, ...), so `const { defineChannels } = require('typed-pg-ipc')` works too.
//
// There is one copy of the code: this file loads the ES module build with require() (Node ^20.19 and
// >= 22.12 load ES modules that way), so `require` and `import` share the same classes and the same
// per-client state: no dual-package hazard.
'use strict'

const lib = require('./index.js')

/** pgIPC(client[, options]) or pgIPC({ connect, ... }): see the ES module's pgIPC. */
function pgIPC(...args) {
  return lib.pgIPC(...args)
}

module.exports = Object.assign(pgIPC, lib)
