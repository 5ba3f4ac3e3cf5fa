#!/usr/bin/env node
// Mailwright runs its TypeScript sources directly (Node 24 strips types); no build step.
import '../src/cli.ts';
