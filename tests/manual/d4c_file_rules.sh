#!/bin/bash
# Manual check (not in CI): Elastic's Defend for Containers rules that read
# file events, loaded unmodified from YOUR copy of elastic/detection-rules
# (Elastic License: never copy them into this repository), against the real
# commands they describe, run in a podman container. As root:
#
#   git clone --depth 1 https://github.com/elastic/detection-rules /tmp/detection-rules
#   cargo build --release -p sensor-agent
#   D4C=/tmp/detection-rules/rules/integrations/cloud_defend tests/manual/d4c_file_rules.sh
#
# Needs the test image (`cargo xtask test` imports localhost/sensortest-busybox).
# Prints FIRED or none per rule.
set -u
D4C=${D4C:?set D4C to the cloud_defend rules directory of a detection-rules clone}
AGENT=${AGENT:-$(dirname "$0")/../../target/release/sensor-agent}
T=$(mktemp -d /tmp/d4c-file.XXXXXX)
mkdir -p $T/rules
# Every single-event rule of the set that reads file.* fields.
for f in "$D4C"/*.toml; do
  python3 -c "import sys,tomllib; q=tomllib.load(open(sys.argv[1],'rb'))['rule'].get('query',''); sys.exit(0 if q.lstrip().split()[0] in ('file','any') and 'file.' in q else 1)" "$f" && cp "$f" $T/rules/
done
W=$T/work; mkdir -p $W/sa $W/pki
echo tok > $W/sa/token; echo ns > $W/sa/namespace; echo k > $W/pki/kubelet.key
podman rm -f d4cfile >/dev/null 2>&1
podman --runtime runc run -d --network none --name d4cfile \
  -v $W/sa:/var/run/secrets/kubernetes.io/serviceaccount -v $W/pki:/var/lib/kubelet/pki \
  localhost/sensortest-busybox sleep 600 >/dev/null
$AGENT run --rules $T/rules > $T/out.ndjson 2> $T/err.log &
AP=$!
for i in $(seq 1 120); do grep -q "sensor ready" $T/err.log && break; sleep 1; done
x() { podman exec d4cfile sh -c "$1"; }
x 'echo /x.so > /etc/ld.so.preload'
x 'mkdir -p /usr/local/bin && cp /bin/busybox /tmp/touch && /tmp/touch /usr/local/bin/dropped'
x 'mkdir -p /etc/cron.d && echo "* * * * * root id" > /etc/cron.d/job'
x 'mkdir -p /root/.ssh && echo ssh-ed25519 AAAA > /root/.ssh/authorized_keys'
x 'touch /tmp/notify_on_release && echo 1 > /tmp/notify_on_release'
x 'touch /tmp/release_agent && echo /x > /tmp/release_agent'
x 'touch /root/.bash_history && rm /root/.bash_history'
x 'echo x >> /var/run/secrets/kubernetes.io/serviceaccount/token'
x 'echo x >> /var/run/secrets/kubernetes.io/serviceaccount/namespace'
x 'echo x >> /var/lib/kubelet/pki/kubelet.key'
sleep 3
kill -INT $AP; wait $AP
podman rm -f d4cfile >/dev/null 2>&1
T=$T python3 - <<'PY'
import json, glob, os, tomllib
T = os.environ['T']
rules = {}
for f in sorted(glob.glob(T + '/rules/*.toml')):
    d = tomllib.load(open(f, 'rb'))['rule']
    rules[d['rule_id']] = (f.split('/')[-1], d['name'])
hits = {}
for line in open(T + '/out.ndjson'):
    v = json.loads(line)
    if v.get('event', {}).get('kind') != 'alert':
        continue
    rid = v['kibana']['alert']['rule']['rule_id']
    cat = v['event']['category'][0]
    hits.setdefault(rid, []).append((cat, v.get('file', {}).get('path') or v['process'].get('command_line')))
for rid, (f, name) in rules.items():
    h = hits.get(rid, [])
    print(f"{'FIRED' if h else 'none '} {len(h)} {f}: {h[:3]}")
PY
tail -1 $T/err.log
echo "outputs in $T"
