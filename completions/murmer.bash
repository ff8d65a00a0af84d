# bash completion for murmer                                 -*- shell-script -*-
#
# Commands and options come from the program itself (the hidden
# `murmer --list-commands`, `murmer --list-options` and
# `murmer <command> --list-options`), so this file never drifts from the
# option tables in cmd/*.c.  Fallback command list (for docs checks):
# doctor force-leave help keygen keys lookup members oplog partitions ping
# send spawn start stop top watch

_murmer()
{
    local cur prev words cword
    _init_completion || return

    local murmer=${words[0]}
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --join | --cluster-key | --timeout | --data-dir)
            ((i++))
            ;;
        -*) ;;
        *)
            cmd=${words[i]}
            break
            ;;
        esac
    done

    # Values of options that take one.
    case $prev in
    --cluster-key | --plugin | --config)
        _filedir
        return
        ;;
    --log-format)
        COMPREPLY=($(compgen -W 'text json' -- "$cur"))
        return
        ;;
    --log-level)
        COMPREPLY=($(compgen -W 'debug info notice warn error' -- "$cur"))
        return
        ;;
    --data-dir)
        _filedir -d
        return
        ;;
    --timeout | --wait)
        COMPREPLY=($(compgen -W '500ms 1s 5s 30s 2m' -- "$cur"))
        return
        ;;
    --status)
        COMPREPLY=($(compgen -W 'alive suspect failed left' -- "$cur"))
        return
        ;;
    --policy)
        COMPREPLY=($(compgen -W 'temporary transient permanent' -- "$cur"))
        return
        ;;
    --visibility)
        COMPREPLY=($(compgen -W 'internal public private' -- "$cur"))
        return
        ;;
    --join | --listen | --advertise | --metrics | --name | --tag | --actor | --key | \
        --prefix | --origin | --shards | --count | --on | --where | --arg | --type | \
        --actor-policy | --actor-visibility)
        return
        ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$("$murmer" --list-options 2>/dev/null)" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$murmer" --list-commands 2>/dev/null)" -- "$cur"))
        fi
        return
    fi

    case $cmd in
    help)
        COMPREPLY=($(compgen -W "$("$murmer" --list-commands 2>/dev/null)" -- "$cur"))
        return
        ;;
    keygen)
        if [[ $cur != -* ]]; then
            _filedir
            return
        fi
        ;;
    keys)
        # keys ACTION [FILE]: the action first, then a key file.
        if [[ $cur != -* ]]; then
            if [[ $prev == keys ]]; then
                COMPREPLY=($(compgen -W 'list install use remove' -- "$cur"))
            elif [[ $prev == install || $prev == use || $prev == remove ]]; then
                _filedir
            fi
            return
        fi
        ;;
    esac

    if [[ $cur == -* ]]; then
        local opts
        opts="$("$murmer" "$cmd" --list-options 2>/dev/null) $("$murmer" --list-options 2>/dev/null)"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    # The first argument of send and lookup is an actor label: ask the
    # cluster (the seed and key given on this command line, or the
    # environment's), with a short timeout so a dead seed never hangs the
    # shell.
    case $cmd in
    send | lookup | stop)
        local j npos=0 globals=()
        for ((j = 1; j < cword; j++)); do
            case ${words[j]} in
            --join | --cluster-key | --data-dir)
                globals+=("${words[j]}" "${words[j + 1]}")
                ((j++))
                ;;
            --timeout | --key | --prefix | --wait) ((j++)) ;;
            -*) ;;
            "$cmd") ;;
            *) npos=$((npos + 1)) ;;
            esac
        done
        if ((npos == 0)); then
            local labels
            labels=$("$murmer" "${globals[@]}" --timeout 1s lookup \
                --prefix "$cur" 2>/dev/null | awk 'NR > 1 { print $1 }')
            COMPREPLY=($(compgen -W "$labels" -- "$cur")) || COMPREPLY=()
        fi
        ;;
    esac
} &&
    complete -F _murmer murmer

# ex: filetype=sh
