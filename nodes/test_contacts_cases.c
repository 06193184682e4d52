/*  =========================================================================
    test_contacts_cases - reads each address book in a directory
    (tests/contacts) and compares what af_contacts makes of it with the
    hand-written FILE.expected beside it (see tests/contacts/README.md)

    test_contacts_cases DIR         every case; exit 1 if one differs
    test_contacts_cases --print DIR/FILE COUNTRY
                                    what the parser makes of one file
    =========================================================================
*/
#include "af_contacts.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  What af_contacts makes of file (a name in the current directory), as text
static char *
s_result (const char *file, const char *country)
{
    char *text = NULL, err [AF_MAX_REASON + 1];
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    af_contacts_t *book = NULL;
    int rc = af_contacts_load (file, country, &book, err, sizeof err);
    if (rc == AF_OK) {
        af_contacts_print (book, out);
        af_contacts_destroy (&book);
    }
    else
        fprintf (out, "error %s: %s\n", af_code_name (rc), err);
    fclose (out);
    return text;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    char buf [4096];
    size_t got;
    while (out && (got = fread (buf, 1, sizeof buf, file)) > 0)
        fwrite (buf, 1, got, out);
    if (out)
        fclose (out);
    fclose (file);
    return text;
}

//  One case: 0 if it passes
static int
s_case (const char *file)
{
    char expected_path [512];
    snprintf (expected_path, sizeof expected_path, "%s.expected", file);
    char *expected = s_read (expected_path);
    if (!expected) {
        printf ("not ok - %s: no %s\n", file, expected_path);
        return 1;
    }
    char country [3] = "";
    const char *body = strchr (expected, '\n');
    if (strncmp (expected, "country ", 8) || !body || body - expected != 10) {
        printf ("not ok - %s: %s does not start with 'country XX'\n", file, expected_path);
        free (expected);
        return 1;
    }
    memcpy (country, expected + 8, 2);
    char *got = s_result (file, country);
    int rc = got && strcmp (got, body + 1) == 0? 0: 1;
    if (rc)
        printf ("not ok - %s (%s)\n--- got:\n%s--- expected:\n%s", file, country, got? got: "(nothing)\n", body + 1);
    else
        printf ("ok - %s (%s)\n", file, country);
    free (got);
    free (expected);
    return rc;
}

static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(char * const *) a, *(char * const *) b);
}

int
main (int argc, char *argv [])
{
    if (argc == 4 && strcmp (argv [1], "--print") == 0) {
        char *text = s_result (argv [2], argv [3]);
        fputs (text? text: "out of memory\n", stdout);
        free (text);
        return 0;
    }
    if (argc != 2) {
        fprintf (stderr, "usage: test_contacts_cases DIR | --print FILE COUNTRY\n");
        return 2;
    }
    if (chdir (argv [1])) {
        perror (argv [1]);
        return 2;
    }
    DIR *dir = opendir (".");
    if (!dir) {
        perror (argv [1]);
        return 2;
    }
    char *names [256];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) && count < 256) {
        const char *name = entry->d_name;
        size_t len = strlen (name);
        if ((len > 4 && strcmp (name + len - 4, ".vcf") == 0) || (len > 4 && strcmp (name + len - 4, ".csv") == 0))
            names [count++] = strdup (name);
    }
    closedir (dir);
    qsort (names, count, sizeof names [0], s_compare);
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        failed += s_case (names [i]);
        free (names [i]);
    }
    printf ("%zu cases, %d failed\n", count, failed);
    return failed || count == 0? 1: 0;
}
