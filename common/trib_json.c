/*
 * trib_json.c -- strict accessors over jansson.
 */
#include "trib_json.h"
#include "trib_err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

int trib_json_parse(const char *text, size_t len, json_t **out, char *err,
                    size_t errlen)
{
    json_error_t je;
    json_t *v;

    v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return TRIB_EINVAL;
    }
    *out = v;
    return 0;
}

static const json_t *field(const json_t *obj, const char *key, int required,
                           int *rc, char *err, size_t errlen)
{
    const json_t *v;

    *rc = 0;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object, got %s",
                 obj ? type_name(obj) : "nothing");
        *rc = TRIB_EARGS;
        return NULL;
    }
    v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "field \"%s\" is required", key);
            *rc = TRIB_EARGS;
        }
        return NULL;
    }
    return v;
}

int trib_json_int(const json_t *obj, const char *key, int required, int64_t min,
                  int64_t max, int64_t *out, char *err, size_t errlen)
{
    int rc;
    const json_t *v = field(obj, key, required, &rc, err, errlen);
    int64_t i;

    if (v == NULL) {
        return rc;
    }
    if (json_is_integer(v)) {
        i = (int64_t)json_integer_value(v);
    } else if (json_is_real(v) &&
               floor(json_real_value(v)) == json_real_value(v) &&
               fabs(json_real_value(v)) < 9e18) {
        i = (int64_t)json_real_value(v);
    } else {
        snprintf(err, errlen,
                 "field \"%s\": expected an integer %lld..%lld, got %s", key,
                 (long long)min, (long long)max, type_name(v));
        return TRIB_EARGS;
    }
    if (i < min || i > max) {
        snprintf(err, errlen, "field \"%s\": %lld is out of range %lld..%lld",
                 key, (long long)i, (long long)min, (long long)max);
        return TRIB_EARGS;
    }
    *out = i;
    return 0;
}

int trib_json_num(const json_t *obj, const char *key, int required, double min,
                  double max, double *out, char *err, size_t errlen)
{
    int rc;
    const json_t *v = field(obj, key, required, &rc, err, errlen);
    double d;

    if (v == NULL) {
        return rc;
    }
    if (!json_is_number(v)) {
        snprintf(err, errlen, "field \"%s\": expected a number %g..%g, got %s",
                 key, min, max, type_name(v));
        return TRIB_EARGS;
    }
    d = json_number_value(v);
    if (!(d >= min && d <= max)) {
        snprintf(err, errlen, "field \"%s\": %g is out of range %g..%g", key, d,
                 min, max);
        return TRIB_EARGS;
    }
    *out = d;
    return 0;
}

int trib_json_str(const json_t *obj, const char *key, int required,
                  const char **out, char *err, size_t errlen)
{
    int rc;
    const json_t *v = field(obj, key, required, &rc, err, errlen);

    if (v == NULL) {
        return rc;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "field \"%s\": expected a string, got %s", key,
                 type_name(v));
        return TRIB_EARGS;
    }
    *out = json_string_value(v);
    return 0;
}

int trib_json_only_keys(const json_t *obj, const char *const *known, char *err,
                        size_t errlen)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object, got %s",
                 obj ? type_name(obj) : "nothing");
        return TRIB_EARGS;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        const char *const *k;
        int found = 0;

        for (k = known; *k != NULL; k++) {
            if (strcmp(*k, key) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            snprintf(err, errlen, "unknown field \"%.64s\"", key);
            return TRIB_EARGS;
        }
    }
    return 0;
}
