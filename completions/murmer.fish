# fish completion for murmer.  Commands and options come from the program
# (the hidden `murmer --list-commands` and `murmer [<command>] --list-options`),
# so this file never drifts from the option tables in cmd/*.c.
# Commands: doctor force-leave help keygen keys lookup members oplog
# partitions ping send spawn start stop top watch

function __murmer_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case --join --cluster-key --timeout --data-dir
                set skip 1
            case '-*'
            case '*'
                echo $t
                return 0
        end
    end
    return 1
end

function __murmer_no_command
    not __murmer_command >/dev/null
end

function __murmer_options
    set -l cmd (__murmer_command)
    if test -n "$cmd"
        murmer $cmd --list-options 2>/dev/null
    end
    murmer --list-options 2>/dev/null
end

complete -c murmer -f
complete -c murmer -n __murmer_no_command -a '(murmer --list-commands 2>/dev/null)'
complete -c murmer -n '__fish_seen_subcommand_from help' -a '(murmer --list-commands 2>/dev/null)'
complete -c murmer -n '__fish_seen_subcommand_from keygen' -F
complete -c murmer -n '__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from list install use remove' -a 'list install use remove'
complete -c murmer -n '__fish_seen_subcommand_from keys; and __fish_seen_subcommand_from install use remove' -F
complete -c murmer -n 'string match -q -- "-*" (commandline -ct)' -a '(__murmer_options)'
complete -c murmer -l cluster-key -r -F
complete -c murmer -l plugin -r -F
complete -c murmer -l config -r -F
complete -c murmer -l log-format -x -a 'text json'
complete -c murmer -l log-level -x -a 'debug info notice warn error'
complete -c murmer -l data-dir -r -a '(__fish_complete_directories)'
complete -c murmer -l status -x -a 'alive suspect failed left'
complete -c murmer -l policy -x -a 'temporary transient permanent'
complete -c murmer -l visibility -x -a 'internal public private'
