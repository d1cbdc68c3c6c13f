#!/usr/bin/env node
// The installed `sfc` command: checks the Node version, then runs the TypeScript CLI through tsx
// (a runtime dependency).
import { exitIfUnsupportedNode } from '../src/cli/node-version.mjs';

exitIfUnsupportedNode();
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.ts');
