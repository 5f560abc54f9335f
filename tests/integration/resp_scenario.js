// The RESP scenario through Node's ioredis, run by resp_test.cc only when node and ioredis are
// already installed (tests never download packages). Usage: node resp_scenario.js HOST PORT
const Redis = require('ioredis');

const [host, port] = process.argv.slice(2);
const r = new Redis({host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0});

function check(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.log(`FAILED ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    process.exit(1);
  }
}

(async () => {
  await r.connect();
  check('ping', await r.ping(), 'PONG');
  check('set', await r.set('js:a', '1'), 'OK');
  check('get', await r.get('js:a'), '1');
  check('get missing', await r.get('js:missing'), null);
  check('set nx', await r.set('js:a', '2', 'NX'), null);
  check('incr', await r.incr('js:n'), 1);
  check('expire', await r.expire('js:a', 100), 1);
  check('mget', await r.mget('js:a', 'js:missing'), ['1', null]);
  const p = r.pipeline();
  for (let i = 0; i < 100; i++) p.set('js:p', String(i)).get('js:p');
  const out = await p.exec();
  for (let i = 0; i < 100; i++) check(`pipelined get ${i}`, out[2 * i + 1][1], String(i));
  try {
    // call() is ioredis 5; older versions have send_command().
    await (r.call ? r.call('FOO', 'bar') : r.send_command('FOO', 'bar'));
    check('unknown command', 'no error', 'error');
  } catch (e) {
    check('unknown command', e.message.startsWith("ERR unknown command 'FOO'"), true);
  }
  console.log('ioredis scenario: all checks passed');
  r.disconnect();
})().catch((e) => {
  console.log(`FAILED: ${e}`);
  process.exit(1);
});
