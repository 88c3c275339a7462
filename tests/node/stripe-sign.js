#!/usr/bin/env node
// Stripe-Signature headers made by the official stripe package, so that the modules' verification is checked
// against Stripe's own code rather than against our reading of the docs.
//   stdin  {"payload": "...", "secret": "whsec_...", "timestamp": 1700000000}   (timestamp optional: now)
//   stdout t=1700000000,v1=<hex>
// An array in gives a JSON array of headers out, one node start for many payloads.
'use strict';

const Stripe = require('stripe');

// The key is never used: signing is local, no request leaves the process.
const stripe = new Stripe('sk_test_unused');

function sign(item) {
  if (typeof item !== 'object' || item === null || typeof item.payload !== 'string' ||
      typeof item.secret !== 'string') {
    throw new Error('each item needs a string payload and a string secret');
  }
  const opts = {payload: item.payload, secret: item.secret};
  if (item.timestamp !== undefined && item.timestamp !== null) {
    opts.timestamp = item.timestamp;
  }
  return stripe.webhooks.generateTestHeaderString(opts);
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  try {
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const out = Array.isArray(input) ? JSON.stringify(input.map(sign)) : sign(input);
    process.stdout.write(out + '\n');
  } catch (e) {
    process.stderr.write(`stripe-sign.js: ${e.message}\n`);
    process.exit(1);
  }
});
