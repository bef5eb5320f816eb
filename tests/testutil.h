/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the Check test programs: unique segment names, child
 * processes, a start barrier, and reaping with a deadline; a program's
 * main() set-up and clean-up; shared-memory boards and their atomics;
 * segment, peer, file and directory helpers.
 */
#ifndef MFS_TESTUTIL_H
#define MFS_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <mfshare.h>

/* Assert that @call returns @want, naming both codes (mfs_err_name) and
 * mfs_last_error() when it does not.  The test programs use it as
 * EXPECT. */
#define MT_EXPECT(call, want) do {                                           \
	int r_ = (call);                                                      \
	int w_ = (want);                                                      \
	ck_assert_msg(r_ == w_, "%s: got %s (%d), want %s; last error: %s",   \
	              #call, mfs_err_name(r_), r_, mfs_err_name(w_),          \
	              mfs_last_error());                                      \
} while (0)

/* Run a suite in fork mode; returns the process exit status. */
int mt_run(Suite *s);

/* A key unique to this process and call: "t-<tag>-<pid>-<n>".  Returns a
 * static buffer rotated over 8 slots. */
const char *mt_key(const char *tag);

/* A fresh private temp directory (mkdtemp under $TMPDIR or /tmp). The
 * caller may rm it with mt_rmtree. */
const char *mt_tmpdir(void);
void mt_rmtree(const char *dir);

/* fork(); the child runs fn(arg) and _exit()s with its return value. */
pid_t mt_spawn(int (*fn)(void *), void *arg);

/* Wait for @pid at most @ms; returns its exit status (0-255), 128+signal
 * when killed, or -1 on timeout (the child is then SIGKILLed and reaped). */
int mt_wait(pid_t pid, int ms);

/* Reap our child @pid (wait4), polling at most @ms; asserts that it was
 * reaped and exited 0, and returns the user + system CPU time it used, in
 * microseconds. */
long mt_reap_cpu_us(pid_t pid, int ms);

/* Is @pid (our child) still running (not yet exited, zombie counts dead)? */
int mt_alive(pid_t pid);

/* Monotonic milliseconds. */
uint64_t mt_now_ms(void);
void mt_sleep_ms(unsigned ms);

/* A start barrier in shared anonymous memory, for released-together
 * children: mt_barrier_new(n) before fork, every party calls
 * mt_barrier_wait(). */
typedef struct mt_barrier mt_barrier;
mt_barrier *mt_barrier_new(unsigned parties);
void mt_barrier_wait(mt_barrier *b);

/* Number of open descriptors of this process (counts /proc/self/fd). */
int mt_count_fds(void);

/* Remove what failed tests left in /dev/shm: every mfshare.t-@tag-*
 * entry (a file, or an empty directory), each reported on stderr as
 * "@who: removing leftover PATH". */
void mt_sweep_shm(const char *tag, const char *who);

/* Read a whole file (up to @max bytes) into a malloc'd buffer; *len set.
 * NULL if it cannot be read. */
unsigned char *mt_slurp(const char *path, size_t max, size_t *len);

/* The start of a test program's main(): @tag becomes "<abbrev><pid>" (the
 * tag of mt_key and mt_sweep_shm), and a fresh "$TMPDIR/mfs-<abbrev>-XXXXXX"
 * (TMPDIR unset or empty: /tmp) is made into @root and exported as $TMPDIR,
 * so every temp dir of the run lives under it.  Returns 0, or -1 when the
 * directory cannot be made. */
int mt_begin(const char *abbrev, char *tag, size_t tagsz, char *root,
             size_t rootsz);

/* The end of such a main(): mt_run(@s), then mt_sweep_shm(@tag, @who) and
 * mt_rmtree(@root); returns mt_run's status. */
int mt_run_clean(Suite *s, const char *tag, const char *who, const char *root);

/* A test case with a timeout of @timeout seconds; @teardown, when not
 * NULL, is its unchecked teardown fixture (once per TCase, in the runner);
 * added to @s when @s is not NULL. */
TCase *mt_tcase(Suite *s, const char *name, int timeout,
                void (*teardown)(void));

/* Sequentially consistent load, store and add-and-fetch of an int that
 * processes share. */
int mt_ld(int *p);
void mt_put(int *p, int v);
int mt_add(int *p, int v);

/* Wait until *@p >= @want, at most @ms; 1 if it got there, else 0. */
int mt_await(int *p, int want, int ms);

/* @size zeroed bytes of shared anonymous memory (survives fork(); the
 * caller munmaps it).  Asserts that mmap worked. */
void *mt_shared_new(size_t size);

/* mt_spawn, plus: the child dies with its parent (PR_SET_PDEATHSIG), so a
 * failed test (or Check's timeout) never leaves processes blocked; exits
 * 99 when the parent is already gone.  Asserts that fork worked. */
pid_t mt_spawn_tied(int (*fn)(void *), void *arg);

/* Create a segment of @size bytes (default options) under a fresh
 * mt_key(@tag), written into @key (@keysz bytes); asserts success. */
mfs_segment *mt_create_keyed(char *key, size_t keysz, const char *tag,
                             size_t size);

/* Detach the last handle on @s; the segment @key must then be gone
 * (mfs_remove answers MFS_E_NOT_FOUND).  Asserts both. */
void mt_finish(mfs_segment *s, const char *key);

/* mfs_stat_segment(@s); asserts that it worked ("stat: ERRNAME"). */
mfs_stat mt_stat(mfs_segment *s);

/* Wait until @s counts @want live attachments (mfs_stat_segment's
 * refcount), at most @ms; returns the milliseconds it took, or -1. */
int mt_wait_refcount(mfs_segment *s, uint32_t want, unsigned ms);

/* fork + exec @path with @args (NULL-terminated, at most 30, after
 * argv[0] = @path).  @keep: a descriptor the child inherits (close-on-exec
 * cleared in the child), or -1.  @to / @from (may be NULL): our ends of
 * pipes on the child's stdin / stdout.  Asserts that pipe2 and fork
 * worked; the child exits 126 when it cannot set up its descriptors, 127
 * when the exec fails. */
pid_t mt_exec_peer(const char *path, const char *const *args, int keep,
                   int *to, int *from);

/* Remove segments of any backend a failed test left under keys
 * "t-@tag-*" (found in the directory mfs_native_path names), each
 * reported on stderr as "@who: removing leftover NAME". */
void mt_sweep_keys(const char *tag, const char *who);

/* "/dev/shm/mfshare.@key": where the SHM backend keeps @key.  A static
 * buffer rotated over 4 slots. */
const char *mt_shm_path(const char *key);

/* One line from @fd (without its newline; at most 254 bytes), waiting at
 * most @ms; NULL on timeout or end of file.  A static buffer. */
const char *mt_read_line(int fd, unsigned ms);

/* Everything on @fd until end of file, malloc'd and NUL-terminated;
 * with @newline_first, after a leading "\n" (so every line can be found
 * as "\nLINE\n").  At most 64 KiB in all, the newline included;
 * asserts that malloc worked. */
char *mt_read_all(int fd, int newline_first);

/* @v in decimal; "/proc/@pid/fd/@fd".  Static buffers rotated over 8 and
 * 4 slots. */
const char *mt_itoa(long v);
const char *mt_proc_fd(long pid, int fd);

/* The index of @pid's row among the @n rows at @att, or -1. */
int mt_find_attacher(const mfs_attacher *att, unsigned n, long pid);

/* Remove @path if it exists: rmdir for a directory, else unlink.  "" is
 * left alone. */
void mt_remove_object(const char *path);

/* A janitor's list of names to remove: @max slots of @size bytes at
 * @paths, *@n of them used, in shared memory so that tests and their
 * children can add to it and the runner sweeps it.  mt_note_path adds
 * @path (atomically; a name too long, or past @max, is dropped);
 * mt_remove_noted removes every name noted (mt_remove_object) and empties
 * the list. */
void mt_note_path(unsigned *n, char *paths, size_t size, unsigned max,
                  const char *path);
void mt_remove_noted(unsigned *n, char *paths, size_t size, unsigned max);

/* Does @path exist (lstat: a dangling link counts)? */
int mt_exists(const char *path);

/* Fill @n bytes at @p with a pattern from @seed; mt_same checks that the
 * bytes hold that pattern, mt_all_zero that they are all zero. */
void mt_fill(void *p, size_t n, unsigned seed);
int mt_same(const void *p, size_t n, unsigned seed);
int mt_all_zero(const void *p, size_t n);

/* The names in directory @dir but "." and "..", as malloc'd strings in a
 * malloc'd array (*@names, *@n entries; free with mt_free_names).  Returns
 * 0, or -1 (with *@names NULL, *@n 0) when @dir cannot be opened. */
int mt_dir_names(const char *dir, char ***names, size_t *n);
void mt_free_names(char **names, size_t n);

/* Is @name one of the @n @names? */
int mt_listed(char **names, size_t n, const char *name);

#endif
