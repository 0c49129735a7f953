#!/usr/bin/env bash
# A real Spark standalone cluster on this machine: one master and two workers, the pipeline
# submitted to it the way the README's "Running on a cluster" tells cluster users, and a
# check that its tables equal a local-mode run's. See docs/scaling.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
case $VENV in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=$VENV/bin/python
STATE=${CDI_LOCAL_CLUSTER_DIR:-$ROOT/build/local-cluster}
WORKERS=2
WORKER_CORES=1
WORKER_MEMORY=${CDI_LOCAL_CLUSTER_WORKER_MEMORY:-2g}
EXECUTOR_MEMORY=${CDI_LOCAL_CLUSTER_EXECUTOR_MEMORY:-1g}
DRIVER_MEMORY=${CDI_LOCAL_CLUSTER_DRIVER_MEMORY:-2g}
START_TIMEOUT=${CDI_LOCAL_CLUSTER_START_TIMEOUT:-90}
CONFIG=$ROOT/conf/pipeline.yml

usage() {
    cat <<EOF
Usage: scripts/local_cluster.sh COMMAND [OPTIONS]

A Spark standalone cluster on 127.0.0.1 (one master, $WORKERS workers of $WORKER_CORES core and
$WORKER_MEMORY each), started with the spark-class launcher of the venv's pyspark.

Commands:
  start                 start the master and the workers on free ports; wait until both
                        workers have registered (timeout ${START_TIMEOUT}s)
  stop                  stop them (by their pid files); does nothing when none runs
  status                print the master's URL and whether each process is alive
  run [OPTIONS] [-- JOB_ARGS...]
                        build the wheel and spark-submit jobs/run_pipeline.py to the running
                        cluster as the README's "Running on a cluster" does; JOB_ARGS go to
                        the job (e.g. -- --stages ingest,standardize)
      --lakehouse DIR   the lakehouse (default: \$STATE/cluster/lakehouse)
      --raw-dir DIR     the raw exports (default: the config's raw_dir)
      --config FILE     the pipeline YAML (default: conf/pipeline.yml)
  check [OPTIONS]       the whole proof: a local-mode demo run (unless given), a cluster
                        lakehouse seeded with only its labels and match model, a cluster run
                        of every stage on the same raw files, and a comparison of the two
                        lakehouses (scripts/compare_lakehouses.py); exit 1 on a difference.
                        Starts the cluster if none runs and then stops it again.
      --local-lakehouse DIR  an existing local-mode lakehouse to compare with
      --raw-dir DIR     the raw exports it was built from (required with --local-lakehouse)
      --people N        people of the local demo run it makes otherwise (default: 200)
      --seed N          its seed (default: 5)
  -h, --help            this text

Environment:
  CDI_LOCAL_CLUSTER_DIR   state folder: pids, logs, work dirs, wheel, lakehouses
                          (default: build/local-cluster)
  CDI_LOCAL_CLUSTER_WORKER_MEMORY, CDI_LOCAL_CLUSTER_EXECUTOR_MEMORY,
  CDI_LOCAL_CLUSTER_DRIVER_MEMORY (defaults: $WORKER_MEMORY, $EXECUTOR_MEMORY, $DRIVER_MEMORY)
  CDI_LOCAL_CLUSTER_START_TIMEOUT seconds to wait for the workers (default: $START_TIMEOUT)
  VENV                    the virtualenv made by make setup (default: .venv)

Logs: \$STATE/logs/{master,worker-1,worker-2,submit}.log; executors' logs under
\$STATE/work/worker-N/<app-id>/<executor>/stderr.
EOF
}

die() {
    echo "local_cluster: $*" >&2
    exit 1
}

say() {
    echo "local_cluster: $*" >&2
}

spark_home() {
    [[ -x $PY ]] || die "no python at $PY; run make setup (or set VENV)"
    "$PY" -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))'
}

# n free TCP ports on 127.0.0.1, space separated (held open together so that they differ).
free_ports() {
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

pid_alive() {  # pid_alive PID: runs (a zombie nobody reaped yet counts as ended)
    kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

alive() {  # alive PIDFILE: the process of the pid file runs
    [[ -f $1 ]] && pid_alive "$(cat "$1")"
}

# Starts a daemon in its own session (setsid), immune to the script's end (nohup).
launch() {  # launch NAME CLASS ARGS...
    local name=$1 class=$2
    shift 2
    # Not a process group leader here (no job control), so setsid execs instead of forking and
    # $! is the JVM's pid (spark-class execs java), which also leads the new process group.
    nohup setsid "$SPARK_HOME/bin/spark-class" "$class" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
}

master_json() {  # prints the number of ALIVE workers the master knows, or nothing
    "$PY" - "$1" <<'EOF' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    print(sum(1 for w in json.load(r)["workers"] if w["state"] == "ALIVE"))
EOF
}

load_env() {
    [[ -f $STATE/cluster.env ]] || return 1
    # shellcheck disable=SC1091
    source "$STATE/cluster.env"
}

running() {
    alive "$STATE/pids/master.pid" && load_env
}

cmd_start() {
    if running; then
        say "already running: $MASTER_URL (web UI http://127.0.0.1:$MASTER_WEBUI_PORT)"
        return 0
    fi
    SPARK_HOME=$(spark_home)
    export SPARK_HOME
    # Bind everything to loopback, and keep executors' scratch space in the state folder.
    export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS=$STATE/local
    mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/work" "$STATE/local"
    rm -f "$STATE"/pids/*.pid "$STATE/cluster.env"
    local ports
    read -r -a ports <<<"$(free_ports $((2 + 2 * WORKERS)))"
    local master_port=${ports[0]} webui_port=${ports[1]}
    launch master org.apache.spark.deploy.master.Master \
        --host 127.0.0.1 --port "$master_port" --webui-port "$webui_port"
    local i
    for ((i = 1; i <= WORKERS; i++)); do
        mkdir -p "$STATE/work/worker-$i"
        launch "worker-$i" org.apache.spark.deploy.worker.Worker \
            --host 127.0.0.1 --port "${ports[2 * i]}" --webui-port "${ports[2 * i + 1]}" \
            --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --work-dir "$STATE/work/worker-$i" \
            "spark://127.0.0.1:$master_port"
    done
    cat >"$STATE/cluster.env" <<EOF
MASTER_URL=spark://127.0.0.1:$master_port
MASTER_WEBUI_PORT=$webui_port
EOF
    local waited=0 registered=""
    while ((waited < START_TIMEOUT)); do
        for name in master $(seq -f 'worker-%g' 1 "$WORKERS"); do
            alive "$STATE/pids/$name.pid" || {
                cmd_stop >/dev/null
                die "the $name exited while starting; read $STATE/logs/$name.log"
            }
        done
        registered=$(master_json "$webui_port")
        [[ $registered == "$WORKERS" ]] && break
        sleep 1
        waited=$((waited + 1))
    done
    if [[ $registered != "$WORKERS" ]]; then
        cmd_stop >/dev/null
        die "${registered:-0} of $WORKERS workers registered within ${START_TIMEOUT}s; read" \
            "$STATE/logs/master.log and $STATE/logs/worker-*.log"
    fi
    say "started spark://127.0.0.1:$master_port with $WORKERS workers in ${waited}s" \
        "(web UI http://127.0.0.1:$webui_port, logs in $STATE/logs)"
}

# Stops one daemon: TERM to its process group (the JVM and the executors and Python workers it
# started), then KILL after 15 s.
stop_one() {
    local pidfile=$1 pid i
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if pid_alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            pid_alive "$pid" || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    local pidfile stopped=0
    for pidfile in "$STATE"/pids/worker-*.pid "$STATE/pids/master.pid"; do
        [[ -f $pidfile ]] || continue
        stop_one "$pidfile"
        stopped=$((stopped + 1))
    done
    rm -f "$STATE/cluster.env"
    say "stopped $stopped process(es)"
}

cmd_status() {
    local name
    if load_env; then echo "master: $MASTER_URL (web UI http://127.0.0.1:$MASTER_WEBUI_PORT)"; fi
    for name in master $(seq -f 'worker-%g' 1 "$WORKERS"); do
        if alive "$STATE/pids/$name.pid"; then
            echo "$name: running, pid $(cat "$STATE/pids/$name.pid")"
        else
            echo "$name: not running"
        fi
    done
}

abspath() {
    "$PY" -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$1"
}

cmd_run() {
    local lakehouse=$STATE/cluster/lakehouse raw_dir="" config=$CONFIG
    while (($#)); do
        case $1 in
        --lakehouse) lakehouse=$2; shift 2 ;;
        --raw-dir) raw_dir=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --) shift; break ;;
        *) die "run: unknown option $1 (see --help)" ;;
        esac
    done
    running || die "no cluster runs; scripts/local_cluster.sh start"
    SPARK_HOME=$(spark_home)
    local jars=${CDI_SPARK_JARS_DIR:-$HOME/.cache/cdi-spark/jars} delta zingg wheel
    delta=$("$PY" -c 'from cdi_spark.session import delta_version; print(delta_version())')
    zingg=$("$PY" -c 'from cdi_spark.session import zingg_jar; print(zingg_jar())')
    for jar in "$jars/delta-spark_2.12-$delta.jar" "$jars/delta-storage-$delta.jar"; do
        [[ -f $jar ]] || die "$jar not found; run make setup"
    done
    rm -rf "$STATE/dist"
    (cd "$ROOT" && "$VENV/bin/pip" wheel --no-deps -q -w "$STATE/dist" .) >"$STATE/logs/wheel.log" 2>&1 ||
        die "pip wheel failed; read $STATE/logs/wheel.log"
    wheel=$(ls "$STATE"/dist/cdi_spark-*.whl)
    local job_args=(--config "$(abspath "$config")" --profile cluster --lakehouse "$(abspath "$lakehouse")")
    [[ -n $raw_dir ]] && job_args+=(--raw-dir "$(abspath "$raw_dir")")
    say "spark-submit to $MASTER_URL: lakehouse $lakehouse (log: $STATE/logs/submit.log)"
    local start=$SECONDS status=0
    # As the README: the venv's spark-submit (pyspark's) and python, the Delta and Zingg jars,
    # the wheel; small memory and partitions for a 2-core machine (Delta rebuilds each table's
    # snapshot in 50 tasks by default: hundreds of tiny tasks per stage for small tables).
    (cd "$ROOT" && PATH=$VENV/bin:$PATH PYSPARK_PYTHON=$PY SPARK_LOCAL_IP=127.0.0.1 \
        SPARK_LOCAL_DIRS=$STATE/local \
        "$VENV/bin/spark-submit" --master "$MASTER_URL" \
        --jars "$jars/delta-spark_2.12-$delta.jar,$jars/delta-storage-$delta.jar,$zingg" \
        --py-files "$wheel" \
        --driver-memory "$DRIVER_MEMORY" --executor-memory "$EXECUTOR_MEMORY" \
        --conf spark.sql.shuffle.partitions=4 \
        --conf spark.default.parallelism=4 \
        --conf spark.databricks.delta.snapshotPartitions=4 \
        --conf spark.ui.showConsoleProgress=false \
        jobs/run_pipeline.py "${job_args[@]}" "$@") 2>&1 | tee "$STATE/logs/submit.log" >&2 ||
        status=$?
    echo $((SECONDS - start)) >"$STATE/run-seconds"
    ((status == 0)) || die "the cluster run failed (exit $status) after $((SECONDS - start))s; read" \
        "$STATE/logs/submit.log and the executors' logs under $STATE/work"
    say "the cluster run finished in $((SECONDS - start))s"
}

# A lakehouse that holds only a local run's labels and match model (Zingg training is not
# deterministic, so the cluster must score with the same model to give the same clusters).
seed_lakehouse() {  # seed_lakehouse FROM TO
    local from=$1 to=$2 kept
    rm -rf "$to"
    for kept in silver/match_labels audit/match_models models; do
        [[ -d $from/$kept ]] || die "$from has no $kept: not a lakehouse that a resolve run trained a model in"
        mkdir -p "$(dirname "$to/$kept")"
        cp -R "$from/$kept" "$to/$kept"
    done
}

cmd_check() {
    local local_lake="" raw_dir="" people=200 seed=5
    while (($#)); do
        case $1 in
        --local-lakehouse) local_lake=$2; shift 2 ;;
        --raw-dir) raw_dir=$2; shift 2 ;;
        --people) people=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) die "check: unknown option $1 (see --help)" ;;
        esac
    done
    if [[ -n $local_lake ]]; then
        [[ -n $raw_dir ]] || die "check: --local-lakehouse needs the --raw-dir it was built from"
    else
        local_lake=$STATE/local/lakehouse
        raw_dir=$STATE/local/data/raw
        say "local-mode demo run: $people people, seed $seed (log: $STATE/logs/local.log)"
        mkdir -p "$STATE/logs"
        "$VENV/bin/cdi-spark" demo --config "$CONFIG" --people "$people" --seed "$seed" \
            --data-dir "$STATE/local/data" --lakehouse "$local_lake" >"$STATE/logs/local.log" 2>&1 ||
            die "the local-mode run failed; read $STATE/logs/local.log"
    fi
    local cluster_lake=$STATE/cluster/lakehouse started=0
    seed_lakehouse "$local_lake" "$cluster_lake"
    if ! running; then
        cmd_start
        started=1
        trap 'cmd_stop' EXIT
    fi
    cmd_run --lakehouse "$cluster_lake" --raw-dir "$raw_dir"
    "$PY" "$ROOT/scripts/compare_lakehouses.py" "$local_lake" "$cluster_lake"
    if ((started)); then
        trap - EXIT
        cmd_stop
    fi
}

main() {
    local command=${1:-}
    (($#)) && shift
    case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    run) cmd_run "$@" ;;
    check) cmd_check "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) echo "local_cluster: unknown command '$command'" >&2; usage >&2; exit 2 ;;
    esac
}

main "$@"; exit
