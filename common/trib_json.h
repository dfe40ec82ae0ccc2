/*
 * trib_json -- small, strict accessors over jansson for the JSON the project
 * reads: job args, notification payloads, config values.
 *
 * Accessors validate type and range and, on failure, write a clear message
 * naming the field ("field \"ms\": expected an integer 0..86400000, got
 * string") into err. Absent optional fields keep the caller's default.
 *
 * Ownership: trib_json_parse() returns a new reference (json_decref it).
 * Threading: no shared state.
 */
#ifndef TRIB_JSON_H
#define TRIB_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Parses one JSON value; 0 or TRIB_EINVAL with a message in err. */
int trib_json_parse(const char *text, size_t len, json_t **out, char *err,
                    size_t errlen);

/* Integer field (JSON integers, or reals with no fraction). required=0:
 * absent keeps *out. 0 or TRIB_EARGS. */
int trib_json_int(const json_t *obj, const char *key, int required, int64_t min,
                  int64_t max, int64_t *out, char *err, size_t errlen);

/* Number field (integer or real). 0 or TRIB_EARGS. */
int trib_json_num(const json_t *obj, const char *key, int required, double min,
                  double max, double *out, char *err, size_t errlen);

/* String field; *out borrowed from obj. 0 or TRIB_EARGS. */
int trib_json_str(const json_t *obj, const char *key, int required,
                  const char **out, char *err, size_t errlen);

/* Fails with TRIB_EARGS naming the first key not in the NULL-terminated
 * list 'known'. */
int trib_json_only_keys(const json_t *obj, const char *const *known, char *err,
                        size_t errlen);

#endif /* TRIB_JSON_H */
