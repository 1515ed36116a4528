/* load.h - a history from what a user or an application names: a directory of
 * migrations (run in memory, or read from the cache) or an exported TOML file. The
 * command line and the public API (include/stemma.h) both load through here. */
#ifndef STM_LOAD_H
#define STM_LOAD_H

#include "cache.h"
#include "layout.h"
#include "lens.h"
#include "lineage.h"
#include "base/error.h"

/* The lineage (lineage NULL: not wanted) and the lenses (lenses NULL: not wanted) of the
 * schema directory or exported file at path, both the caller's (stm_lineage_destroy,
 * stm_lens_destroy). A directory goes through the cache in cache_dir (NULL: none), and
 * warning (may be NULL; CACHE_WARNING_MAX bytes) gets the cache's one line, or "". An
 * exported file yields *lenses NULL when it does not say what its migrations do (an
 * older stemma's). STM_EINPUT for a path that is neither, or a bad set or file. */
STM_NODISCARD stm_err stm_load_history(const char *path, const char *cache_dir,
                                       lineage_t **lineage, lens_set_t **lenses, char *warning,
                                       stm_error *err);
/* The same with the directory read in layout (LAYOUT_AUTO: detected, as above). A
 * layout named for an exported file is STM_EINPUT: it has none. */
STM_NODISCARD stm_err stm_load_history_layout(const char *path, schemaset_layout layout,
                                              const char *cache_dir, lineage_t **lineage,
                                              lens_set_t **lenses, char *warning, stm_error *err);

#endif
