/* yaml-floor: the cost floor for reading a manifests repository — walk it, read every YAML file
 * and pull all of libyaml's events, nothing else. bench/controller-scale compares the controller to it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

typedef struct totals {
        unsigned long files, events;
        unsigned long long bytes;
        char *buf;
        size_t buf_size;
} totals;

/* Same suffix rule as the controller's discover.c, so both read the same files. */
static bool has_yaml_suffix(const char *name) {
        size_t n = strlen(name);
        return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* Reads the whole file into t->buf (reused between files: the floor should not pay for malloc). */
static int read_file(int dirfd, const char *name, totals *t, size_t *ret_size) {
        struct stat st;
        size_t n = 0;
        int fd;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if ((size_t) st.st_size + 1 > t->buf_size) {
                t->buf_size = (size_t) st.st_size + 1;
                t->buf = realloc(t->buf, t->buf_size);
                if (!t->buf)
                        abort();
        }
        for (;;) {
                ssize_t k = read(fd, t->buf + n, t->buf_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == t->buf_size) {
                        /* The file grew since fstat(): make room and go on. */
                        t->buf_size *= 2;
                        t->buf = realloc(t->buf, t->buf_size);
                        if (!t->buf)
                                abort();
                }
        }
        close(fd);
        *ret_size = n;
        return 0;
}

static int parse_one(int dirfd, const char *name, const char *shown, totals *t) {
        yaml_parser_t parser;
        size_t size = 0;
        bool done = false;
        int r;

        r = read_file(dirfd, name, t, &size);
        if (r < 0) {
                fprintf(stderr, "yaml-floor: cannot read '%s': %s\n", shown, strerror(-r));
                return r;
        }
        if (!yaml_parser_initialize(&parser))
                abort();
        yaml_parser_set_input_string(&parser, (const unsigned char *) t->buf, size);
        while (!done) {
                yaml_event_t ev;

                if (!yaml_parser_parse(&parser, &ev)) {
                        fprintf(stderr, "yaml-floor: '%s': %s\n", shown, parser.problem ? parser.problem : "YAML error");
                        yaml_parser_delete(&parser);
                        return -EBADMSG;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                t->events++;
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        t->files++;
        t->bytes += size;
        return 0;
}

/* Takes ownership of dirfd. */
static int walk(int dirfd, const char *shown, totals *t) {
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = fdopendir(dirfd);
        if (!d) {
                r = -errno;
                close(dirfd);
                return r;
        }
        while (r >= 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, ".git") == 0)
                        continue;
                unsigned char type = de->d_type;
                if (type == DT_UNKNOWN) {
                        /* Some filesystems leave d_type empty; fall back to a stat. */
                        struct stat st;
                        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
                }
                if (type == DT_DIR) {
                        char sub[4096];
                        int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0) {
                                r = -errno;
                                break;
                        }
                        snprintf(sub, sizeof(sub), "%s/%s", shown, de->d_name);
                        r = walk(fd, sub, t);
                } else if ((type == DT_REG || type == DT_LNK) && has_yaml_suffix(de->d_name))
                        r = parse_one(dirfd, de->d_name, de->d_name, t);
        }
        closedir(d);
        return r;
}

int main(int argc, char **argv) {
        totals t = {};
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: yaml-floor PATH...   (directories are searched for *.yaml/*.yml)\n");
                return 2;
        }
        for (int i = 1; i < argc && r >= 0; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "yaml-floor: '%s': %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode)) {
                        int fd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        r = fd < 0 ? -errno : walk(fd, argv[i], &t);
                } else
                        r = parse_one(AT_FDCWD, argv[i], argv[i], &t);
        }
        free(t.buf);
        if (r < 0)
                return 1;
        printf("files %lu bytes %llu events %lu\n", t.files, t.bytes, t.events);
        return 0;
}
