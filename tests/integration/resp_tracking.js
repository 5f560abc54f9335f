// node-redis's client-side cache (the `redis` package, RESP3 `clientSideCache`) against a Cairn
// cluster: a key read twice costs one server read, a write of it through another node reaches
// the cache as an invalidation push, and the next read goes to the server and sees the new
// value. Run by RespTrackingTest.NodeRedisClientSideCache (tests/integration/resp_tracking_test.cc).
//
//   node resp_tracking.js HOST READER_RESP_PORT WRITER_RESP_PORT READER_HTTP_PORT
//
// Exit status 0 when every check passed (it prints "all checks passed"), 1 otherwise.
'use strict';

const http = require('http');
const { createClient, BasicClientSideCache } = require('redis');

const [host, readerPort, writerPort, httpPort] = process.argv.slice(2);

function fail(message) {
  console.error('FAILED: ' + message);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

// The GETs the reader's node served (cairn_requests_total{frontdoor="resp",op="get",...}).
function serverGets() {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port: Number(httpPort), path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          let total = 0;
          for (const line of body.split('\n')) {
            if (line.startsWith('cairn_requests_total{frontdoor="resp",op="get",')) {
              total += Number(line.slice(line.lastIndexOf(' ') + 1));
            }
          }
          resolve(total);
        });
      })
      .on('error', reject);
  });
}

// Resolves when `cache` is told `key` changed; rejects after `ms`.
function invalidationOf(cache, key, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no invalidation of ${key} within ${ms} ms`)), ms);
    cache.on('invalidate', (k) => {
      if (k === null || k.toString() === key) {
        clearTimeout(timer);
        resolve(k === null ? '(all)' : k.toString());
      }
    });
  });
}

async function main() {
  const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0 });
  const reader = createClient({
    socket: { host, port: Number(readerPort) },
    RESP: 3,
    clientSideCache: cache,
  });
  const writer = createClient({ socket: { host, port: Number(writerPort) } });
  reader.on('error', (e) => fail('reader: ' + e));
  writer.on('error', (e) => fail('writer: ' + e));
  await reader.connect();
  await writer.connect();

  const key = `node-redis:csc:${process.pid}`;
  check((await writer.set(key, 'v1')) === 'OK', 'SET v1 through the writer node');

  const before = await serverGets();
  check((await reader.get(key)) === 'v1', 'first read: v1');
  check((await reader.get(key)) === 'v1', 'second read: v1, from the cache');
  const afterTwo = await serverGets();
  check(afterTwo - before === 1, `two reads cost ${afterTwo - before} server reads, not 1`);
  let stats = cache.stats();
  check(stats.hitCount === 1 && stats.missCount === 1,
        `cache stats after two reads: ${stats.hitCount} hits, ${stats.missCount} misses`);

  // Another connection writes the key through another node: the reader's cache hears of it.
  const invalidated = invalidationOf(cache, key, 10000);
  check((await writer.set(key, 'v2')) === 'OK', 'SET v2 through the writer node');
  const what = await invalidated;
  check(what === key, `invalidated ${what}, not ${key}`);

  check((await reader.get(key)) === 'v2', 'the read after the invalidation sees v2');
  const afterThree = await serverGets();
  check(afterThree - before === 2, `the read after the invalidation went to the server ` +
        `(${afterThree - before} server reads in all, not 2)`);
  stats = cache.stats();
  check(stats.missCount === 2, `cache misses after the invalidation: ${stats.missCount}, not 2`);
  check((await reader.get(key)) === 'v2', 'and the next one is cached again');
  check((await serverGets()) - before === 2, 'cached again: no server read');

  // A delete through the writer node invalidates too, and the read then finds nothing.
  const deleted = invalidationOf(cache, key, 10000);
  check((await writer.del(key)) === 1, 'DEL through the writer node');
  await deleted;
  check((await reader.get(key)) === null, 'the read after the delete finds nothing');

  await reader.quit();
  await writer.quit();
  console.log('all checks passed');
}

main().catch((e) => fail(e.stack || String(e)));
