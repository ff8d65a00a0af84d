/*
 * sim.h — the deterministic simulator of murmer-sim (docs/design.md, The
 * simulator): scenario files and the shared types of the simulator sources.
 */
#ifndef MM_SIM_H
#define MM_SIM_H

#include <stddef.h>
#include <stdint.h>

/* A set of nodes: from lo (an index, or lo% of N when lo_pct) to hi
 * (inclusive index, or exclusive hi% of N when hi_pct). */
struct sim_range {
    int lo_pct, hi_pct;
    double lo, hi;
};

enum sim_act {
    SIM_START = 1, /* start range [over ms]; joins node 0 */
    SIM_KILL,      /* kill range, or pct of the live nodes (never node 0) */
    SIM_RESTART,   /* restart killed nodes in range (new generation) */
    SIM_CHURN,     /* every |every| ms until |until|: kill pct, restart */
    SIM_PARTITION, /* groups; nodes in none form group 0 */
    SIM_CUT,       /* one-way: packets from groups[0] to groups[1] lost */
    SIM_HEAL,      /* partitions and cuts gone */
    SIM_LOSS,      /* loss_pct */
    SIM_LATENCY,   /* lat_min, lat_max */
    SIM_MEASURE,   /* the steady window of the byte figures starts */
    SIM_DROP       /* undeclared fault: packets to range lost (checker test) */
};

#define SIM_GROUPS_MAX 8

struct sim_action {
    uint64_t at; /* ms */
    int kind;    /* enum sim_act */
    int line;
    struct sim_range r;          /* START KILL RESTART */
    int by_pct;                  /* KILL CHURN: pct of the live nodes */
    double pct;                  /* KILL CHURN LOSS */
    uint64_t over, every, until; /* START; CHURN */
    uint32_t lat_min, lat_max;   /* LATENCY (ms) */
    struct sim_range groups[SIM_GROUPS_MAX];
    int ngroups;
};

struct sim_scenario {
    char path[256];
    int nodes;       /* default N (--nodes overrides) */
    uint64_t run_ms; /* required */
    uint64_t settle_ms;
    int labels;       /* registry labels each node registers */
    int labelled_pct; /* of the nodes, the share that registers (100) */
    struct sim_action *acts;
    size_t nacts;
};

/*
 * Parses the scenario file |path|.  0, or -1 with a one-line
 * "path:line: message" in |err|.
 */
int sim_scenario_load(struct sim_scenario *sc, const char *path, char *err,
                      size_t errlen);
/* The same from |text| (named |name| in errors). */
int sim_scenario_parse(struct sim_scenario *sc, const char *name,
                       const char *text, char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *sc);
/* Node indexes [*lo, *hi) of |r| for N nodes. */
void sim_range_bounds(const struct sim_range *r, int n, int *lo, int *hi);

#endif /* MM_SIM_H */
