# test/bench/als_lib.sh: sourced by the ALS benchmarks. Builds rec, stages
# it, starts a throwaway server (Unix socket only, removed on exit) and
# builds the stand-alone engine driver (als_engine.c). Not part of test/run.

PGBIN=/usr/lib/postgresql/15/bin
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${DATA:-}" ]; then
	for d in "$src/../shared/data" /work/shared/data; do
		[ -d "$d" ] && { DATA=$d; break; }
	done
fi
if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); owner=postgres; else runas=(); owner=$(id -un); fi
work=$(mktemp -d /tmp/rec-bench.XXXXXX)
chmod 755 "$work"
port=${PORT:-5497}
THREADS=${THREADS:-2}

als_cleanup() {
	[ -n "${KEEP:-}" ] && { echo "# kept: $work"; return; }
	"${runas[@]}" $PGBIN/pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap als_cleanup EXIT

psql() { command $PGBIN/psql -h "$work" -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 "$@" postgres; }
val() { psql -At -c "$1"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

als_start() {
	(cd "$src" && make -s -j2 >/dev/null && make -s install DESTDIR="$work/stage" >/dev/null)
	gcc -O2 -std=gnu99 -I"$src/src" -o "$work/als_engine" "$src/test/bench/als_engine.c" \
		"$src/src/als/engine.c" -lopenblas -lpthread -lm
	chown -R "$owner" "$work"
	"${runas[@]}" $PGBIN/initdb -D "$work/data" >/dev/null 2>&1
	cat >>"$work/data/postgresql.conf" <<EOC
extension_destdir = '$work/stage'
dynamic_library_path = '$work/stage/usr/lib/postgresql/15/lib:\$libdir'
shared_preload_libraries = 'rec'
port = $port
unix_socket_directories = '$work'
listen_addresses = ''
shared_buffers = 1GB
maintenance_work_mem = 1GB
max_wal_size = 10GB
fsync = off
synchronous_commit = off
jit = off
rec.train_max_threads = ${THREADS:-2}
rec.train_memory_limit = '8GB'
EOC
	"${runas[@]}" $PGBIN/pg_ctl -D "$work/data" -l "$work/log" -w start >/dev/null
	psql -c "CREATE EXTENSION rec"
}

# median of numbers, one per line on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
