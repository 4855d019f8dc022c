/* Repository walk: any layout, any depth, deterministic order. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "discover.h"

static bool has_yaml_suffix(const char *name) {
        size_t n = strlen(name);
        return (n > 5 && streq(name + n - 5, ".yaml")) || (n > 4 && streq(name + n - 4, ".yml"));
}

static void list_add(file_list *l, char *path) {
        if (l->n == l->alloc) {
                l->alloc = l->alloc ? l->alloc * 2 : 64;
                l->paths = xrealloc(l->paths, l->alloc * sizeof(char *));
        }
        l->paths[l->n++] = path;
}

/* rel + "/" + name, for every entry: without asprintf()'s format parsing. */
static char *join_path(const char *rel, const char *name) {
        size_t a = strlen(rel), b = strlen(name);
        char *p = xmalloc(a + b + 2);

        memcpy(p, rel, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
        return p;
}

static int walk(int dirfd, const char *rel, file_list *l, diag_list *diags, size_t depth) {
        DIR *d;
        struct dirent *de;

        if (depth > 64) {
                diag_add(diags, DIAG_WARNING, rel, 0, 0, "directory nesting deeper than 64 levels, not searched");
                close(dirfd);
                return 0;
        }
        d = fdopendir(dirfd);
        if (!d) {
                int r = -errno;
                close(dirfd);
                return r;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") || streq(de->d_name, ".git"))
                        continue;
                /* Most file systems give the type with the name: a stat for every entry doubled the
                 * walk's system calls. Other files than YAML and directories need nothing more. */
                if (de->d_type == DT_REG && !has_yaml_suffix(de->d_name))
                        continue;
                child = rel[0] ? join_path(rel, de->d_name) : xstrdup(de->d_name);
                if (de->d_type == DT_REG || de->d_type == DT_DIR)
                        st.st_mode = de->d_type == DT_REG ? S_IFREG : S_IFDIR;
                else if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        diag_add(diags, DIAG_WARNING, child, 0, 0, "cannot stat: %s", strerror(errno));
                        continue;
                }
                if (S_ISLNK(st.st_mode)) {
                        /* Follow links to files; links to directories could loop, so they are not walked. */
                        if (fstatat(dirfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
                                if (S_ISDIR(st.st_mode))
                                        diag_add(diags, DIAG_NOTE, child, 0, 0,
                                                 "symbolic link to a directory, not searched");
                                continue;
                        }
                }
                if (S_ISDIR(st.st_mode)) {
                        int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0) {
                                diag_add(diags, DIAG_WARNING, child, 0, 0, "cannot open directory: %s",
                                         strerror(errno));
                                continue;
                        }
                        (void) walk(fd, child, l, diags, depth + 1);
                        if (l->n > DISCOVER_MAX_FILES)
                                break;
                } else if (S_ISREG(st.st_mode) && has_yaml_suffix(de->d_name)) {
                        if (l->n == DISCOVER_MAX_FILES) {
                                diag_add(diags, DIAG_ERROR, child, 0, 0,
                                         "more than %d YAML files in the repository; refusing to go on",
                                         DISCOVER_MAX_FILES);
                                l->n++; /* marks the overflow; nothing is stored */
                                break;
                        }
                        list_add(l, TAKE_PTR(child));
                }
        }
        closedir(d);
        return 0;
}

static int path_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int discover_yaml_files(const char *root, file_list *ret, diag_list *diags) {
        file_list l = {};
        int fd, r;

        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = walk(fd, "", &l, diags, 0);
        if (r < 0) {
                file_list_done(&l);
                return r;
        }
        if (l.n > DISCOVER_MAX_FILES)
                l.n = DISCOVER_MAX_FILES;
        qsort_safe(l.paths, l.n, sizeof(char *), path_cmp);
        *ret = l;
        return 0;
}

void file_list_done(file_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->paths[i]);
        free(l->paths);
        *l = (file_list) {};
}
