/*  =========================================================================
    bench_contacts - contact tokens for an address book, in process

    What a node and the contacts service do for an address book of
    --numbers contacts (1,000), one number each, in process and on one
    core, each phase timed apart:

      1. parse: af_contacts reads the book as a vCard 3.0 file (numbers
         written as people write them, read in Germany) and normalises
         every number to E.164;
      2. blind: the node blinds each distinct number (af_oprf_blind);
      3. codec: CONTACTS_EVAL encoded by the node and decoded by the
         worker, CONTACTS_EVALUATED encoded by the worker and decoded by
         the node (af_msg, as on the wire);
      4. evaluate: the service checks and evaluates every element
         (af_evaluator_answer, with its key from a key file);
      5. finalize: the node unblinds and hashes each into its token
         (af_oprf_finalize_batch: one scalar inversion for the book;
         --one-by-one: af_oprf_finalize, one each).

    Books are repeated for --seconds (3), at least 3 times; per phase it
    prints the median time per book, and the service's evaluations per
    second. Sockets are not in it (the whole path, CLI to node to broker
    to worker and back, with the upload: README "Benchmarks").

    Target from issue 13: an address book of 1,000 contacts evaluated and
    uploaded in under 1 s.

    Usage: bench_contacts [--numbers N] [--seconds S] [--one-by-one]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include "af_contacts.h"
#include "af_evaluator.h"
#include "af_oprf.h"
#include "bench_stats.h"

enum { PARSE, BLIND, CODEC, EVALUATE, FINALIZE, PHASES };
//  --one-by-one: af_oprf_finalize per number, not af_oprf_finalize_batch
static bool s_one_by_one = false;

static const char *s_phase_names [PHASES] = { "parse + E.164", "blind", "codec (both messages)",
                                              "evaluate (service)", "finalize" };

//  A vCard 3.0 book of count contacts, numbers written in several ways
static char *
s_book (int count, size_t *size)
{
    char *text = NULL;
    FILE *out = open_memstream (&text, size);
    assert (out);
    for (int i = 0; i < count; i++) {
        fprintf (out, "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person%d;Test;;;\r\nFN:Test Person%d\r\n", i, i);
        switch (i % 4) {
            case 0: fprintf (out, "TEL;TYPE=CELL:0151 %08d\r\n", i); break;
            case 1: fprintf (out, "TEL;TYPE=CELL:+49 151 %08d\r\n", i); break;
            case 2: fprintf (out, "item1.TEL:+49 (0)151-%04d-%04d\r\n", i / 10000, i % 10000); break;
            default: fprintf (out, "TEL;type=CELL;type=VOICE;type=pref:0049 151 %08d\r\n", i); break;
        }
        fprintf (out, "END:VCARD\r\n");
    }
    fclose (out);
    return text;
}

static double
s_us (void)
{
    return (double) zclock_usecs ();
}

//  One book, start to end: each phase's time in ms into times
static void
s_round (const char *book, size_t book_size, af_evaluator_t *evaluator, double times [PHASES])
{
    char err [256];
    double t0 = s_us ();
    af_contacts_t *contacts;
    int rc = af_contacts_parse (book, book_size, "DE", &contacts, err, sizeof err);
    assert (rc == AF_OK);
    uint32_t count = (uint32_t) af_contacts_number_count (contacts);
    assert (count >= 1 && count <= AF_MAX_CONTACTS_EVAL);
    double t1 = s_us ();

    af_msg_t *request = af_msg_new (AF_MSG_CONTACTS_EVAL);
    af_msg_set_rid_random (request);
    af_msg_set_element_count (request, count);
    uint8_t (*blinds) [AF_OPRF_SCALAR_SIZE] = calloc (count, AF_OPRF_SCALAR_SIZE);
    assert (blinds);
    for (uint32_t i = 0; i < count; i++) {
        const char *number = af_contacts_number (contacts, i);
        rc = af_oprf_blind ((const uint8_t *) number, strlen (number), blinds [i], request->elements [i]);
        assert (rc == AF_OK);
    }
    double t2 = s_us ();

    zframe_t *frame = af_msg_encode (request);
    af_msg_t *received = NULL;
    rc = af_msg_decode (zframe_data (frame), zframe_size (frame), &received, err, sizeof err, NULL, NULL);
    assert (rc == AF_OK);
    zframe_destroy (&frame);
    double t3 = s_us ();

    af_msg_t *reply = af_evaluator_answer (evaluator, received);
    assert (reply->id == AF_MSG_CONTACTS_EVALUATED);
    double t4 = s_us ();

    frame = af_msg_encode (reply);
    af_msg_t *answer = NULL;
    rc = af_msg_decode (zframe_data (frame), zframe_size (frame), &answer, err, sizeof err, NULL, NULL);
    assert (rc == AF_OK && answer->element_count == count);
    zframe_destroy (&frame);
    double t5 = s_us ();

    const uint8_t **inputs = calloc (count, sizeof (uint8_t *));
    size_t *sizes = calloc (count, sizeof (size_t));
    uint8_t (*outputs) [AF_OPRF_OUTPUT_SIZE] = calloc (count, AF_OPRF_OUTPUT_SIZE);
    assert (inputs && sizes && outputs);
    for (uint32_t i = 0; i < count; i++) {
        inputs [i] = (const uint8_t *) af_contacts_number (contacts, i);
        sizes [i] = strlen ((const char *) inputs [i]);
    }
    if (s_one_by_one)
        for (uint32_t i = 0; i < count; i++) {
            rc = af_oprf_finalize (inputs [i], sizes [i], blinds [i], answer->elements [i], outputs [i]);
            assert (rc == AF_OK);
        }
    else {
        rc = af_oprf_finalize_batch (count, inputs, sizes, (const uint8_t (*) [AF_OPRF_SCALAR_SIZE]) blinds,
                                     (const uint8_t (*) [AF_OPRF_ELEMENT_SIZE]) answer->elements, outputs, NULL);
        assert (rc == AF_OK);
    }
    double t6 = s_us ();
    free (inputs);
    free (sizes);
    free (outputs);

    times [PARSE] = (t1 - t0) / 1000;
    times [BLIND] = (t2 - t1) / 1000;
    times [CODEC] = (t3 - t2 + t5 - t4) / 1000;
    times [EVALUATE] = (t4 - t3) / 1000;
    times [FINALIZE] = (t6 - t5) / 1000;
    sodium_memzero (blinds, count * AF_OPRF_SCALAR_SIZE);
    free (blinds);
    af_msg_destroy (&answer);
    af_msg_destroy (&reply);
    af_msg_destroy (&received);
    af_msg_destroy (&request);
    af_contacts_destroy (&contacts);
}

//  Read the options. -1 to go on, or the status to exit with.
static int
s_parse_options (int argc, char *argv [], int *numbers, double *seconds)
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_contacts [--numbers N] [--seconds S] [--one-by-one]\n"
                    "Contact tokens for an address book of N contacts (1000, at most %d), in process:\n"
                    "parse, blind, codec, evaluate, finalize, each timed. --one-by-one finalizes\n"
                    "with one inversion per number (af_oprf_finalize) instead of one per book.\n",
                    AF_MAX_CONTACTS_EVAL);
            return 0;
        }
        if (streq (argv [i], "--one-by-one"))
            s_one_by_one = true;
        else
        if (i + 1 < argc && streq (argv [i], "--numbers"))
            *numbers = atoi (argv [++i]);
        else
        if (i + 1 < argc && streq (argv [i], "--seconds"))
            *seconds = atof (argv [++i]);
        else {
            fprintf (stderr, "bench_contacts: unknown option %s (see --help)\n", argv [i]);
            return 2;
        }
    }
    if (*numbers < 1 || *numbers > AF_MAX_CONTACTS_EVAL || *seconds <= 0) {
        fprintf (stderr, "bench_contacts: --numbers is 1..%d, --seconds more than 0\n", AF_MAX_CONTACTS_EVAL);
        return 2;
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    int numbers = 1000;
    double seconds = 3;
    int rc = s_parse_options (argc, argv, &numbers, &seconds);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    char dir [] = "/tmp/bench_contacts.XXXXXX", path [64], err [1200];
    assert (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/oprf.key", dir);
    af_evaluator_t *evaluator = af_evaluator_new (path, NULL, err, sizeof err);
    if (!evaluator) {
        fprintf (stderr, "bench_contacts: %s\n", err);
        return 1;
    }
    size_t book_size;
    char *book = s_book (numbers, &book_size);

    enum { MAX_ROUNDS = 10000 };
    double (*times) [PHASES] = calloc (MAX_ROUNDS, sizeof *times);
    double *totals = calloc (MAX_ROUNDS, sizeof (double));
    assert (times && totals);
    int rounds = 0;
    double start = s_us ();
    while (rounds < MAX_ROUNDS && (rounds < 3 || s_us () - start < seconds * 1e6)) {
        s_round (book, book_size, evaluator, times [rounds]);
        for (int p = 0; p < PHASES; p++)
            totals [rounds] += times [rounds][p];
        rounds++;
    }
    printf ("address book: %d contacts, one number each (%zu bytes of vCard 3.0), %d books\n",
            numbers, book_size, rounds);
    printf ("%-24s %12s %12s %14s\n", "phase", "median ms", "min ms", "per number us");
    double column [MAX_ROUNDS];
    double evaluate_median = 0;
    for (int p = 0; p < PHASES; p++) {
        for (int r = 0; r < rounds; r++)
            column [r] = times [r][p];
        double median = bench_median (column, rounds);
        if (p == EVALUATE)
            evaluate_median = median;
        printf ("%-24s %12.2f %12.2f %14.1f\n", s_phase_names [p], median, column [0], median * 1000 / numbers);
    }
    double total = bench_median (totals, rounds);
    printf ("%-24s %12.2f %12.2f %14.1f\n", "the whole book", total, totals [0], total * 1000 / numbers);
    printf ("service: %.0f evaluations/s on one core (with the element checks)\n",
            numbers / (evaluate_median / 1000));
    printf ("target (issue 13): 1,000 contacts evaluated and uploaded in under 1 s: %s in process "
            "(%.0f ms a book); sockets not included\n",
            totals [rounds / 2] < 1000 * numbers / 1000.0? "met": "NOT met", totals [rounds / 2]);
    free (book);
    free (times);
    free (totals);
    af_evaluator_destroy (&evaluator);
    unlink (path);
    rmdir (dir);
    return 0;
}
