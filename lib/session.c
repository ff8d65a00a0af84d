/* session.c — placeholder until client sessions land (see session.h). */
#include "session.h"

struct mm_session {
    int unused;
};

int
mm__session_new(struct mm_session **out, struct mm_cluster *c)
{
    (void)c;
    *out = mm__calloc(1, sizeof(**out));
    return *out ? 0 : UV_ENOMEM;
}

void
mm__session_conn_down(struct mm_session *s, struct mm_qconn *conn)
{
    (void)s;
    (void)conn;
}

void
mm__session_stop(struct mm_session *s)
{
    (void)s;
}

void
mm__session_free(struct mm_session *s)
{
    mm__free(s);
}
