#!/usr/bin/env bats
# 96-sim: a bounded smoke run of the deterministic simulator (make sim runs
# the full set): one scenario at 30 nodes replays bit for bit, an undeclared
# fault is reported as a violation, a bad scenario line is refused.

setup()
{
    : "${MURMER_BUILD:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build}"
    SIM=$MURMER_BUILD/sim/murmer-sim
    ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    [ -x "$SIM" ] || skip "no $SIM (make sim builds it)"
}

@test "sim: the kill scenario holds every invariant and replays bit for bit" {
    run timeout 60 "$SIM" --replay --nodes 30 --seed 7 "$ROOT/sim/scenarios/kill.txt"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} =~ \ detected=[0-9]+\ .*\ violations=0\ trace=([0-9a-f]{16})$ ]]
    t1=${BASH_REMATCH[1]}
    [[ ${lines[1]} == "replay seed=7: identical (trace $t1,"* ]]
    # A second process gives the same trace.
    run timeout 60 "$SIM" --nodes 30 --seed 7 "$ROOT/sim/scenarios/kill.txt"
    [ "$status" -eq 0 ]
    [[ $output == *" trace=$t1" ]]
    # Another seed, another run.
    run timeout 60 "$SIM" --nodes 30 --seed 8 "$ROOT/sim/scenarios/kill.txt"
    [ "$status" -eq 0 ]
    [[ $output != *" trace=$t1" ]]
}

@test "sim: an undeclared fault is a violation with seed, time and invariant" {
    run timeout 60 "$SIM" --seed 3 "$ROOT/sim/tests/undeclared-drop.txt"
    [ "$status" -eq 1 ]
    [[ ${lines[0]} =~ ^VIOLATION\ seed=3\ scenario=.*undeclared-drop.txt\ nodes=20\ t=[0-9.]+s\ invariant=no-false-failure: ]]
}

@test "sim: a bad scenario line is refused with its line number (exit 2)" {
    run "$SIM" "$ROOT/sim/tests/bad-range.txt"
    [ "$status" -eq 2 ]
    [[ $output == *"bad-range.txt:3: bad node range '5-x'"* ]]
    run "$SIM" --nodes 0 "$ROOT/sim/scenarios/kill.txt"
    [ "$status" -eq 2 ]
    [ "$output" = "murmer-sim: --nodes wants 1..1000000" ]
}

@test "sim: labels on a share of the nodes; --progress; bad shares refused" {
    # 20 % of 30 nodes register 3 labels each: the registry converges.
    run timeout 60 "$SIM" --nodes 30 --seed 5 --labels 3 --labelled 20 --progress "$ROOT/sim/scenarios/join.txt"
    [ "$status" -eq 0 ]
    [[ $output =~ registry_converge_s=[0-9.]+\  ]]
    [[ $output == *" violations=0 "* ]]
    # --progress: lines while the join converges, the last one complete.
    [[ $output =~ progress\ t=[0-9.]+\ live=30\ fewest_alive=30\ complete=30\  ]]
    run "$SIM" --labelled 101 "$ROOT/sim/scenarios/join.txt"
    [ "$status" -eq 2 ]
    [ "$output" = "murmer-sim: --labelled wants 0..100 (%)" ]
    run "$SIM" --labels 65 "$ROOT/sim/scenarios/join.txt"
    [ "$status" -eq 2 ]
    [ "$output" = "murmer-sim: --labels wants 0..64" ]
}
