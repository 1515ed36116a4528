/* nodeutil.c - the helpers nodeutil.h describes. */
#include "nodeutil.h"
#include "base/buf.h"
#include "node/config.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>

void nu_write_config(const char *dir, const char *extra)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "[node]\ndb = \"app.db\"\nschemas = \"schemas\"\n%s", extra);
    tu_write(dir, "node.toml", stm_buf_str(&b));
    stm_buf_free(&b);
}

void nu_refuse_all(const nu_bad *bad, size_t n)
{
    char *dir = tu_tmpdir();
    for (size_t i = 0; i < n; i++) {
        if (bad[i].extra[0] == '!')
            tu_write(dir, "node.toml", bad[i].extra + 1);
        else
            nu_write_config(dir, bad[i].extra);
        node_config cfg;
        stm_error err = {0};
        if (stm_config_load(dir, &cfg, &err) != STM_EINPUT)
            fail_msg("accepted: %s", bad[i].extra);
        tu_expect_msg(&err, dir, "node.toml", bad[i].says, NULL);
        stm_config_destroy(&cfg);
    }
    tu_remove_tree(dir);
    free(dir);
}
