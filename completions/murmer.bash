# bash completion for murmer                                 -*- shell-script -*-
#
# Commands and options come from the program itself (the hidden
# `murmer --list-commands`, `murmer --list-options` and
# `murmer <command> --list-options`), so this file never drifts from the
# option tables in cmd/*.c.  Fallback command list (for docs checks):
# force-leave help keygen lookup members oplog send start watch

_murmer()
{
    local cur prev words cword
    _init_completion || return

    local murmer=${words[0]}
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --join | --cluster-key | --timeout)
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
    --cluster-key | --plugin)
        _filedir
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
    --join | --listen | --advertise | --name | --tag | --actor | --key | \
        --prefix | --origin | --shards | --count)
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
    esac

    if [[ $cur == -* ]]; then
        local opts
        opts="$("$murmer" "$cmd" --list-options 2>/dev/null) $("$murmer" --list-options 2>/dev/null)"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
} &&
    complete -F _murmer murmer

# ex: filetype=sh
