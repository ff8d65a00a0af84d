# helpers/members.bash — membership helpers for bats files, on top of
# helpers/cluster.bash (load that first):
#
#   load 'helpers/cluster'
#   load 'helpers/members'
#
# Provides: members_json PORT (the member list as node 127.0.0.1:PORT sees
# it), member_state PORT NAME (alive/suspect/failed/left, or "none"),
# all_see NAME STATE PORT... (every listed node sees NAME in STATE), and
# alive_on PORT (how many members that node lists as alive).

# members_json PORT: `murmer members --json` through the node on PORT.
members_json()
{
    timeout 20 murmer --join "127.0.0.1:$1" --cluster-key "$KEY" \
        --timeout 5s members --json 2>/dev/null
}

# member_state PORT NAME: NAME's state as the node on PORT lists it; "none"
# when it is not listed, "error" when the node cannot be asked.
member_state()
{
    local out
    out=$(members_json "$1") || { echo error; return 0; }
    jq -r --arg n "$2" \
        '([.members[] | select(.name == $n) | .state] | first) // "none"' \
        <<<"$out" 2>/dev/null || echo error
}

# alive_on PORT: how many members the node on PORT lists as alive.
alive_on()
{
    members_json "$1" |
        jq '[.members[] | select(.state == "alive")] | length' 2>/dev/null ||
        echo 0
}

# all_see NAME STATE PORT...: succeeds when every node listed sees NAME in
# STATE.
all_see()
{
    local name=$1 state=$2 port
    shift 2
    for port in "$@"; do
        [ "$(member_state "$port" "$name")" = "$state" ] || return 1
    done
}

# all_alive N PORT...: every node listed sees exactly N members, all alive.
all_alive()
{
    local n=$1 port
    shift
    for port in "$@"; do
        [ "$(alive_on "$port")" = "$n" ] || return 1
        [ "$(members_json "$port" | jq '.members | length')" = "$n" ] ||
            return 1
    done
}
