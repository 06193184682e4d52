/*  =========================================================================
    af_adb - a device description from a connected Android device

    The output of adb is device data, not ours: every value is looked up by
    exact property name at the start of a line, copied only when it fits
    its buffer, and the finished description goes through the same
    af_device_complete and af_device_validate as a JSON file, so a device
    cannot give the node a description the broker would refuse. adb runs
    without a shell (execvp, the serial as one argument), with a time limit
    and a bound on what it may print.
    =========================================================================
*/
#include "af_adb.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
af_adb_property (const char *getprop, const char *name, char *buf, size_t size, bool *found)
{
    assert (getprop && name && buf && size && found);
    *found = false;
    size_t name_len = strlen (name);
    for (const char *line = getprop; *line; ) {
        if (line [0] == '[' && strncmp (line + 1, name, name_len) == 0
        &&  strncmp (line + 1 + name_len, "]: [", 4) == 0) {
            //  The value ends at a ']' that ends a line (values may hold
            //  ']' and, rarely, newlines)
            const char *value = line + 1 + name_len + 4;
            const char *end = value;
            while ((end = strchr (end, ']')) != NULL) {
                if (end [1] == 0 || end [1] == '\n' || (end [1] == '\r' && (end [2] == '\n' || end [2] == 0)))
                    break;
                end++;
            }
            if (!end)
                return AF_E_MALFORMED;
            size_t len = (size_t) (end - value);
            if (len >= size)
                return AF_E_TOO_BIG;
            memcpy (buf, value, len);
            buf [len] = 0;
            *found = true;
            return AF_OK;
        }
        const char *next = strchr (line, '\n');
        if (!next)
            break;
        line = next + 1;
    }
    return AF_OK;
}

//  The value of a property into buf: true if it is there, ends its line
//  and fits (what the parser below can use), else false
static bool
s_lookup (const char *getprop, const char *name, char *buf, size_t size)
{
    bool found;
    return af_adb_property (getprop, name, buf, size, &found) == AF_OK && found;
}

//  A decimal number of at most 6 digits at *p, which is advanced. -1 if none.
static long
s_number (const char **p)
{
    long value = 0;
    int digits = 0;
    while (isdigit ((unsigned char) **p)) {
        if (++digits > 6)
            return -1;
        value = value * 10 + (**p - '0');
        (*p)++;
    }
    return digits? value: -1;
}

//  The text after "label" at the start of a line of out, blanks skipped,
//  or NULL
static const char *
s_after_label (const char *out, const char *label)
{
    size_t len = strlen (label);
    for (const char *line = out; line && *line; ) {
        if (strncmp (line, label, len) == 0) {
            line += len;
            while (*line == ' ' || *line == '\t')
                line++;
            return line;
        }
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

//  Copy a property into buf when present, not empty and fitting. True if
//  copied.
static bool
s_property (const char *getprop, const char *name, char *buf, size_t size)
{
    char value [256];
    if (!s_lookup (getprop, name, value, sizeof value) || strlen (value) >= size || !*value)
        return false;
    strcpy (buf, value);
    return true;
}

//  True if list (comma-separated, e.g. ro.build.characteristics) has item
static bool
s_list_has (const char *list, const char *item)
{
    size_t len = strlen (item);
    for (const char *p = list; *p; ) {
        const char *comma = strchr (p, ',');
        size_t n = comma? (size_t) (comma - p): strlen (p);
        if (n == len && strncmp (p, item, len) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

int
af_adb_parse (af_device_t *device, const char *getprop, const char *wm_size,
              const char *wm_density, char *err, size_t errlen)
{
    assert (device && getprop);
    memset (device, 0, sizeof *device);
    char value [256];
    const char *p;

    //  Android, by its API level
    if (!s_lookup (getprop, "ro.build.version.sdk", value, sizeof value)) {
        snprintf (err, errlen, "getprop: no ro.build.version.sdk (not an Android device?)");
        return AF_E_BAD_DEVICE;
    }
    p = value;
    long sdk = s_number (&p);
    if (sdk < 1 || sdk > AF_MAX_SDK || *p) {
        snprintf (err, errlen, "getprop: ro.build.version.sdk '%.32s' is not an API level 1..%d",
                  value, AF_MAX_SDK);
        return AF_E_BAD_DEVICE;
    }
    device->sdk = (uint32_t) sdk;
    strcpy (device->platform, "android");
    uint32_t version;
    if (s_property (getprop, "ro.build.version.release", value, sizeof device->os_version)
    &&  af_version_parse (value, &version) == AF_OK)
        strcpy (device->os_version, value);

    //  Model; its default comes from the brand and device name
    char brand [AF_MAX_NAME + 1] = "", build_device [AF_MAX_NAME + 1] = "";
    if (s_lookup (getprop, "ro.product.model", value, sizeof value) && *value) {
        if (strlen (value) >= sizeof device->model) {
            snprintf (err, errlen, "getprop: ro.product.model is longer than %d bytes", AF_MAX_NAME);
            return AF_E_BAD_DEVICE;
        }
        strcpy (device->model, value);
    }
    s_property (getprop, "ro.product.manufacturer", device->manufacturer, sizeof device->manufacturer);
    s_property (getprop, "ro.product.brand", brand, sizeof brand);
    s_property (getprop, "ro.product.device", build_device, sizeof build_device);

    //  ABIs in preference order
    if (s_lookup (getprop, "ro.product.cpu.abilist", value, sizeof value) && *value) {
        char *state = NULL;
        for (char *abi = strtok_r (value, ",", &state); abi && device->abi_count < AF_MAX_ABIS;
             abi = strtok_r (NULL, ",", &state))
            if (*abi && strlen (abi) <= AF_MAX_ABI)
                strcpy (device->abis [device->abi_count++], abi);
    }
    else {
        if (s_property (getprop, "ro.product.cpu.abi", device->abis [0], sizeof device->abis [0]))
            device->abi_count++;
        if (s_property (getprop, "ro.product.cpu.abi2", device->abis [device->abi_count],
                        sizeof device->abis [0]))
            device->abi_count++;
    }

    //  The locale, where bundletool looks for it
    char language [16] = "", region [16] = "";
    if (s_property (getprop, "persist.sys.locale", device->locales [0], sizeof device->locales [0])
    ||  s_property (getprop, "ro.product.locale", device->locales [0], sizeof device->locales [0]))
        device->locale_count = 1;
    else
    if (s_property (getprop, "ro.product.locale.language", language, sizeof language)
    &&  s_property (getprop, "ro.product.locale.region", region, sizeof region)
    &&  strlen (language) + 1 + strlen (region) < sizeof device->locales [0]) {
        snprintf (device->locales [0], sizeof device->locales [0], "%s-%s", language, region);
        device->locale_count = 1;
    }

    //  Screen: the physical size and density
    p = wm_density? s_after_label (wm_density, "Physical density:"): NULL;
    long density = p? s_number (&p): -1;
    if (density < 0 && s_lookup (getprop, "ro.sf.lcd_density", value, sizeof value)) {
        p = value;
        density = s_number (&p);
    }
    if (density < 1 || density > AF_MAX_DENSITY) {
        snprintf (err, errlen, "no screen density: neither `wm density` nor ro.sf.lcd_density "
                  "gave one in 1..%d", AF_MAX_DENSITY);
        return AF_E_BAD_DEVICE;
    }
    device->density = (uint32_t) density;
    p = wm_size? s_after_label (wm_size, "Physical size:"): NULL;
    if (p) {
        long width = s_number (&p);
        long height = width >= 0 && *p++ == 'x'? s_number (&p): -1;
        if (width < 1 || width > AF_MAX_SCREEN || height < 1 || height > AF_MAX_SCREEN) {
            snprintf (err, errlen, "wm size: no physical size of 1..%d pixels a side", AF_MAX_SCREEN);
            return AF_E_BAD_DEVICE;
        }
        device->screen_w = (uint32_t) width;
        device->screen_h = (uint32_t) height;
    }

    //  The build's characteristics name TVs, watches and tablets
    if (s_lookup (getprop, "ro.build.characteristics", value, sizeof value)) {
        const char *form = s_list_has (value, "tv")? "tv":
                           s_list_has (value, "watch")? "watch":
                           s_list_has (value, "tablet")? "tablet": NULL;
        if (form)
            strcpy (device->form_factor, form);
    }
    char inner [200];
    if (af_device_complete (device, brand, build_device, inner, sizeof inner) != AF_OK) {
        snprintf (err, errlen, "the description from adb is refused: %s", inner);
        return AF_E_BAD_DEVICE;
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Running adb

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Start adb with argv, stdin from /dev/null, stdout and stderr on pipes
//  whose reading ends are *out_fd and *err_fd. The child's pid, or -1 with
//  err.
static pid_t
s_spawn (const char *adb, const char *const *argv, int *out_fd, int *err_fd,
         char *err, size_t errlen)
{
    int out_pipe [2], err_pipe [2];
    if (pipe2 (out_pipe, O_CLOEXEC)) {
        snprintf (err, errlen, "cannot run adb: %s", strerror (errno));
        return -1;
    }
    if (pipe2 (err_pipe, O_CLOEXEC)) {
        snprintf (err, errlen, "cannot run adb: %s", strerror (errno));
        close (out_pipe [0]);
        close (out_pipe [1]);
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (err, errlen, "cannot run adb: %s", strerror (errno));
        close (out_pipe [0]); close (out_pipe [1]); close (err_pipe [0]); close (err_pipe [1]);
        return -1;
    }
    if (pid == 0) {
        int null = open ("/dev/null", O_RDONLY);
        if (null < 0 || dup2 (null, 0) < 0 || dup2 (out_pipe [1], 1) < 0 || dup2 (err_pipe [1], 2) < 0)
            _exit (126);
        execvp (adb, (char *const *) argv);
        dprintf (2, "cannot run %s: %s\n", adb, strerror (errno));
        _exit (127);
    }
    close (out_pipe [1]);
    close (err_pipe [1]);
    *out_fd = out_pipe [0];
    *err_fd = err_pipe [0];
    return pid;
}

//  What adb printed: all of its stdout, the last bytes of its stderr
typedef struct {
    char *buf;                  //  stdout, up to AF_MAX_ADB_OUTPUT bytes
    size_t size, capacity;
    char messages [512];        //  the tail of stderr, NUL-terminated
    size_t messages_len;
} adb_output_t;

//  Why a run failed when adb printed too much (told from the other
//  failures by its address: AF_E_TOO_BIG, not AF_E_INTERNAL)
static const char s_too_much [] = "printed more than 1 MiB";

//  Read what stdout has into output->buf, growing it; at the end of the
//  stream, close it (fd->fd becomes -1). NULL, or why the run fails.
static const char *
s_read_stdout (adb_output_t *output, struct pollfd *fd)
{
    if (output->size + 1 >= output->capacity) {
        if (output->size >= AF_MAX_ADB_OUTPUT)
            return s_too_much;
        size_t bigger_size = output->capacity * 2 > AF_MAX_ADB_OUTPUT + 1?
                             AF_MAX_ADB_OUTPUT + 1: output->capacity * 2;
        char *bigger = (char *) realloc (output->buf, bigger_size);
        if (!bigger)
            return "out of memory";
        output->buf = bigger;
        output->capacity = bigger_size;
    }
    ssize_t n = read (fd->fd, output->buf + output->size, output->capacity - 1 - output->size);
    if (n > 0)
        output->size += (size_t) n;
    else
    if (n == 0 || errno != EINTR) {
        close (fd->fd);
        fd->fd = -1;
    }
    return NULL;
}

//  Read what stderr has, keeping the last bytes: adb's error is its last
//  line. At the end of the stream, close it (fd->fd becomes -1).
static void
s_read_stderr (adb_output_t *output, struct pollfd *fd)
{
    char chunk [256];
    ssize_t n = read (fd->fd, chunk, sizeof chunk);
    if (n > 0) {
        if ((size_t) n >= sizeof output->messages)
            n = sizeof output->messages - 1;
        if (output->messages_len + (size_t) n >= sizeof output->messages) {
            size_t drop = output->messages_len + (size_t) n - (sizeof output->messages - 1);
            memmove (output->messages, output->messages + drop, output->messages_len - drop);
            output->messages_len -= drop;
        }
        memcpy (output->messages + output->messages_len, chunk, (size_t) n);
        output->messages_len += (size_t) n;
        output->messages [output->messages_len] = 0;
    }
    else
    if (n == 0 || errno != EINTR) {
        close (fd->fd);
        fd->fd = -1;
    }
}

//  Collect adb's stdout and stderr (fds [0] and [1]) until both end, within
//  AF_ADB_TIMEOUT_MS. NULL, or why the run fails; the caller closes what
//  is still open.
static const char *
s_collect (adb_output_t *output, struct pollfd fds [2])
{
    const char *failure = NULL;
    int64_t deadline = s_now_ms () + AF_ADB_TIMEOUT_MS;
    while (!failure && (fds [0].fd >= 0 || fds [1].fd >= 0)) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0) {
            failure = "timed out";
            break;
        }
        int rc = poll (fds, 2, (int) left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            failure = "poll failed";
            break;
        }
        if (fds [0].fd >= 0 && fds [0].revents) {
            failure = s_read_stdout (output, &fds [0]);
            if (failure)
                break;
        }
        if (fds [1].fd >= 0 && fds [1].revents)
            s_read_stderr (output, &fds [1]);
    }
    return failure;
}

//  Run adb [-s serial] shell WORD... and collect its output (caller frees
//  *out, NUL-terminated). AF_OK, or with err AF_E_TOO_BIG (it printed more
//  than AF_MAX_ADB_OUTPUT) or AF_E_INTERNAL (cannot run, failed, too slow).
static int
s_run (const char *adb, const char *serial, const char *const *words, char **out,
       char *err, size_t errlen)
{
    const char *argv [12];
    int argc = 0;
    argv [argc++] = adb;
    if (serial) {
        argv [argc++] = "-s";
        argv [argc++] = serial;
    }
    argv [argc++] = "shell";
    for (int i = 0; words [i] && argc < 11; i++)
        argv [argc++] = words [i];
    argv [argc] = NULL;
    char command [64];
    snprintf (command, sizeof command, "%s%s%s", words [0], words [1]? " ": "", words [1]? words [1]: "");

    int out_fd, err_fd;
    pid_t pid = s_spawn (adb, argv, &out_fd, &err_fd, err, errlen);
    if (pid < 0)
        return AF_E_INTERNAL;
    adb_output_t output = { .capacity = 4096 };
    output.buf = (char *) malloc (output.capacity);
    struct pollfd fds [2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
    const char *failure = output.buf? s_collect (&output, fds): "out of memory";
    if (fds [0].fd >= 0)
        close (fds [0].fd);
    if (fds [1].fd >= 0)
        close (fds [1].fd);
    if (failure)
        kill (pid, SIGKILL);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    //  The last non-empty line adb printed on stderr
    char *messages = output.messages;
    while (output.messages_len && isspace ((unsigned char) messages [output.messages_len - 1]))
        messages [--output.messages_len] = 0;
    char *last = strrchr (messages, '\n');
    last = last? last + 1: messages;
    if (failure) {
        snprintf (err, errlen, "adb shell %s: %s", command, failure);
        free (output.buf);
        return failure == s_too_much? AF_E_TOO_BIG: AF_E_INTERNAL;
    }
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127 && strncmp (last, "cannot run", 10) == 0) {
        snprintf (err, errlen, "%s (install Debian's adb package, or name the program with AF_ADB)",
                  last);
        free (output.buf);
        return AF_E_INTERNAL;
    }
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        snprintf (err, errlen, "adb shell %s failed (%s %d)%s%s", command,
                  WIFEXITED (status)? "exit status": "signal",
                  WIFEXITED (status)? WEXITSTATUS (status): WTERMSIG (status),
                  *last? ": ": "", last);
        free (output.buf);
        return AF_E_INTERNAL;
    }
    output.buf [output.size] = 0;
    *out = output.buf;
    return AF_OK;
}

int
af_adb_read (af_device_t *device, const char *adb, const char *serial,
             char *err, size_t errlen)
{
    assert (device);
    adb = adb && *adb? adb: "adb";
    if (serial) {
        bool ok = *serial && *serial != '-' && strlen (serial) <= AF_MAX_NAME;
        for (const char *p = serial; ok && *p; p++)
            ok = *p > 0x20 && *p < 0x7f;
        if (!ok) {
            snprintf (err, errlen, "'%.64s' is not a device serial (as `adb devices` lists them)", serial);
            return AF_E_MALFORMED;
        }
    }
    static const char *const getprop [] = { "getprop", NULL };
    static const char *const wm_size [] = { "wm", "size", NULL };
    static const char *const wm_density [] = { "wm", "density", NULL };
    char *props = NULL, *size = NULL, *density = NULL;
    int code = s_run (adb, serial, getprop, &props, err, errlen);
    if (code == AF_OK)
        code = s_run (adb, serial, wm_size, &size, err, errlen);
    if (code == AF_OK)
        code = s_run (adb, serial, wm_density, &density, err, errlen);
    if (code == AF_OK)
        code = af_adb_parse (device, props, size, density, err, errlen);
    free (props);
    free (size);
    free (density);
    return code;
}

//  --------------------------------------------------------------------------
//  Self test

#define streq(s1,s2)    (strcmp ((s1), (s2)) == 0)

//  Properties: exact names at the start of a line, values with ']' and
//  newlines, CRLF line ends (old adb), absent and too long
static void
s_test_properties (void)
{
    char value [64];
    const char *props =
        "[ro.build.version.sdk]: [33]\r\n"
        "[ro.product.model.x]: [not this]\r\n"
        "[ro.product.model]: [SM-G991B]\r\n"
        "[ro.odd]: [a]b]\r\n"
        "[ro.multi]: [line one\r\nline two]\r\n"
        "[ro.empty]: []\r\n"
        "   [ro.indented]: [no]\r\n"
        "[ro.unterminated]: [x\r\n";
    bool found;
    assert (af_adb_property (props, "ro.product.model", value, sizeof value, &found) == AF_OK && found
            && streq (value, "SM-G991B"));
    assert (af_adb_property (props, "ro.odd", value, sizeof value, &found) == AF_OK && found && streq (value, "a]b"));
    assert (af_adb_property (props, "ro.multi", value, sizeof value, &found) == AF_OK && found
            && streq (value, "line one\r\nline two"));
    assert (af_adb_property (props, "ro.empty", value, sizeof value, &found) == AF_OK && found && streq (value, ""));
    assert (af_adb_property (props, "ro.unterminated", value, sizeof value, &found) == AF_E_MALFORMED && !found);
    assert (af_adb_property (props, "ro.indented", value, sizeof value, &found) == AF_OK && !found);
    assert (af_adb_property (props, "ro.product", value, sizeof value, &found) == AF_OK && !found);
    assert (af_adb_property (props, "ro.product.model", value, 8, &found) == AF_E_TOO_BIG && !found);
    assert (af_adb_property ("", "ro.x", value, sizeof value, &found) == AF_OK && !found);
}

//  Descriptions from getprop and wm, device by device
static void
s_test_parse (void)
{
    char err [256];
    af_device_t device;
    //  A phone: the ABI list, persist.sys.locale before ro.product.locale,
    //  the physical size and density and not the user's override
    const char *phone =
        "[persist.sys.locale]: [en-US]\n"
        "[ro.build.characteristics]: [phone]\n"
        "[ro.build.version.release]: [13]\n"
        "[ro.build.version.sdk]: [33]\n"
        "[ro.product.cpu.abilist]: [arm64-v8a,armeabi-v7a,armeabi]\n"
        "[ro.product.locale]: [en-GB]\n"
        "[ro.product.manufacturer]: [samsung]\n"
        "[ro.product.model]: [SM-G991B]\n"
        "[ro.sf.lcd_density]: [480]\n";
    assert (af_adb_parse (&device, phone, "Physical size: 1080x2400\nOverride size: 720x1600\n",
                          "Physical density: 420\nOverride density: 480\n", err, sizeof err) == AF_OK);
    assert (streq (device.platform, "android") && device.sdk == 33 && streq (device.os_version, "13"));
    assert (streq (device.model, "SM-G991B") && streq (device.name, "SM-G991B"));
    assert (streq (device.manufacturer, "samsung") && streq (device.form_factor, "phone"));
    assert (device.abi_count == 3 && streq (device.abis [2], "armeabi"));
    assert (device.locale_count == 1 && streq (device.locales [0], "en-US"));
    assert (device.screen_w == 1080 && device.screen_h == 2400 && device.density == 420);

    //  Without wm: the density from ro.sf.lcd_density, the screen unknown
    assert (af_adb_parse (&device, phone, NULL, "", err, sizeof err) == AF_OK);
    assert (device.density == 480 && device.screen_w == 0 && device.screen_h == 0);
    //  A device on which wm fails says so on stdout ("Error: ..."): unknown
    assert (af_adb_parse (&device, phone, "Error: no display\n", NULL, err, sizeof err) == AF_OK);
    assert (device.screen_w == 0);
    assert (af_adb_parse (&device, phone, "Physical size: 1080\n", NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "wm size"));
    assert (af_adb_parse (&device, phone, "Physical size: 99999x1\n", NULL, err, sizeof err) == AF_E_BAD_DEVICE);

    //  A TV by its characteristics; a tablet by its screen (sw600dp); a
    //  watch; the older properties; a release that is not a number
    const char *tv =
        "[ro.build.characteristics]: [nosdcard,tv]\n"
        "[ro.build.version.release]: [S]\n"
        "[ro.build.version.sdk]: [31]\n"
        "[ro.product.brand]: [google]\n"
        "[ro.product.device]: [sabrina]\n"
        "[ro.product.cpu.abi]: [armeabi-v7a]\n"
        "[ro.product.cpu.abi2]: [armeabi]\n"
        "[ro.product.locale.language]: [en]\n"
        "[ro.product.locale.region]: [US]\n"
        "[ro.sf.lcd_density]: [320]\n";
    assert (af_adb_parse (&device, tv, "Physical size: 1920x1080\n", NULL, err, sizeof err) == AF_OK);
    assert (streq (device.form_factor, "tv") && streq (device.os_version, "12"));
    assert (streq (device.model, "google sabrina"));
    assert (device.abi_count == 2 && streq (device.abis [1], "armeabi"));
    assert (device.locale_count == 1 && streq (device.locales [0], "en-US"));
    assert (af_adb_parse (&device, phone, "Physical size: 1600x2560\n", "Physical density: 274\n",
                          err, sizeof err) == AF_OK && streq (device.form_factor, "tablet"));
    const char *watch =
        "[ro.build.characteristics]: [nosdcard,watch]\n"
        "[ro.build.version.release]: [11]\n"
        "[ro.build.version.sdk]: [30]\n"
        "[ro.product.cpu.abilist]: [armeabi-v7a,armeabi]\n"
        "[ro.product.model]: [Pixel Watch]\n";
    assert (af_adb_parse (&device, watch, "Physical size: 384x384\n", "Physical density: 320\n",
                          err, sizeof err) == AF_OK);
    assert (streq (device.form_factor, "watch") && device.locale_count == 0);
    //  Tokens of the characteristics, not substrings
    const char *tvish =
        "[ro.build.characteristics]: [tvx,nowatch]\n"
        "[ro.build.version.sdk]: [30]\n[ro.sf.lcd_density]: [320]\n"
        "[ro.product.cpu.abilist]: [x86_64]\n";
    assert (af_adb_parse (&device, tvish, NULL, NULL, err, sizeof err) == AF_OK);
    assert (streq (device.form_factor, "phone") && streq (device.model, "Android device"));
}

//  What is refused names what is missing
static void
s_test_refusals (void)
{
    char err [256];
    af_device_t device;
    assert (af_adb_parse (&device, "[ro.product.model]: [x]\n", NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "ro.build.version.sdk"));
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [3x]\n", NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "API level"));
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [30]\n", NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "density"));
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [30]\n[ro.sf.lcd_density]: [320]\n",
                          NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "supportedAbis"));
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [30]\n[ro.sf.lcd_density]: [320]\n"
                          "[ro.product.cpu.abilist]: [x86 64]\n", NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "supportedAbis"));
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [30]\n[ro.sf.lcd_density]: [320]\n"
                          "[ro.product.cpu.abilist]: [x86_64]\n[ro.product.model]: [bad\tname]\n",
                          NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "printable"));
    //  getprop gives bytes: a model that is not UTF-8 is refused here, not
    //  by the broker's decoder (found by fuzz_adb: it made a device.json
    //  without the model)
    assert (af_adb_parse (&device, "[ro.build.version.sdk]: [30]\n[ro.sf.lcd_density]: [320]\n"
                          "[ro.product.cpu.abilist]: [x86_64]\n[ro.product.model]: [Pixel\xff]\n",
                          NULL, NULL, err, sizeof err) == AF_E_BAD_DEVICE);
    assert (strstr (err, "UTF-8"));
}

//  Running adb: a stand-in program that answers like adb, records its
//  arguments, and fails like adb for an unknown serial
static void
s_test_running_adb (void)
{
    char err [256];
    af_device_t device;
    char dir [] = "/tmp/af_adb_test.XXXXXX";
    assert (mkdtemp (dir));
    char script [600], args [600];
    snprintf (script, sizeof script, "%s/adb", dir);
    snprintf (args, sizeof args, "%s/args", dir);
    FILE *file = fopen (script, "w");
    assert (file);
    fprintf (file,
        "#!/bin/sh\n"
        "echo \"$*\" >> '%s'\n"
        "if [ \"$2\" = BIG ]; then yes | head -c 1100000; exit 0; fi\n"
        "if [ \"$2\" = EMPTY ]; then exit 0; fi\n"
        "if [ \"$1\" = -s ] && [ \"$2\" != R58N ]; then echo \"adb: device '$2' not found\" >&2; exit 1; fi\n"
        "case \"$*\" in\n"
        "  *getprop) printf '[ro.build.version.sdk]: [33]\\n[ro.product.model]: [SM-G991B]\\n"
        "[ro.product.cpu.abilist]: [arm64-v8a]\\n' ;;\n"
        "  *'wm size') echo 'Physical size: 1080x2400' ;;\n"
        "  *'wm density') echo 'Physical density: 420' ;;\n"
        "esac\n", args);
    fclose (file);
    assert (chmod (script, 0700) == 0);
    assert (af_adb_read (&device, script, "R58N", err, sizeof err) == AF_OK);
    assert (streq (device.model, "SM-G991B") && device.screen_h == 2400 && device.density == 420);
    file = fopen (args, "r");
    assert (file);
    char line [128];
    assert (fgets (line, sizeof line, file) && streq (line, "-s R58N shell getprop\n"));
    assert (fgets (line, sizeof line, file) && streq (line, "-s R58N shell wm size\n"));
    assert (fgets (line, sizeof line, file) && streq (line, "-s R58N shell wm density\n"));
    fclose (file);
    assert (af_adb_read (&device, script, NULL, err, sizeof err) == AF_OK);
    assert (af_adb_read (&device, script, "other", err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "getprop failed") && strstr (err, "device 'other' not found"));
    assert (af_adb_read (&device, script, "-x", err, sizeof err) == AF_E_MALFORMED && strstr (err, "serial"));
    assert (af_adb_read (&device, script, "a b", err, sizeof err) == AF_E_MALFORMED && strstr (err, "serial"));
    snprintf (script, sizeof script, "%s/no-such-adb", dir);
    assert (af_adb_read (&device, script, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "cannot run") && strstr (err, "adb package"));
    //  A device that prints too much, or nothing a description is made of
    snprintf (script, sizeof script, "%s/adb", dir);
    assert (af_adb_read (&device, script, "BIG", err, sizeof err) == AF_E_TOO_BIG && strstr (err, "more than 1 MiB"));
    assert (af_adb_read (&device, script, "EMPTY", err, sizeof err) == AF_E_BAD_DEVICE
            && strstr (err, "ro.build.version.sdk"));
    char command [700];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
}

void
af_adb_test (bool verbose)
{
    if (verbose)
        printf (" * af_adb: ");
    s_test_properties ();
    s_test_parse ();
    s_test_refusals ();
    s_test_running_adb ();
    if (verbose)
        printf ("OK\n");
}
