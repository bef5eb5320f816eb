// SPDX-License-Identifier: MIT
// QSharedMemory contender of mfs-bench (Qt 6, QtCore only, no event loop).
#include "adapt.h"

#include <QByteArray>
#include <QFile>
#include <QSharedMemory>
#include <QString>

#include <cstdio>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>

char adapt_error[256];

static void fail(const char *what, const QSharedMemory *m)
{
	std::snprintf(adapt_error, sizeof adapt_error, "QSharedMemory::%s: %s", what,
	              m ? m->errorString().toLocal8Bit().constData() : "out of memory");
}

extern "C" void *qt_open(const char *key, int creator)
{
	QSharedMemory *m = new QSharedMemory(QString::fromLatin1(key));

	if (creator ? !m->create(4096) : !m->attach()) {
		fail(creator ? "create" : "attach", m);
		delete m;
		return nullptr;
	}
	return m;
}

extern "C" void qt_close(void *h)
{
	QSharedMemory *m = static_cast<QSharedMemory *>(h);

	m->detach();
	delete m;
}

extern "C" int qt_unc(void *h, long n)
{
	QSharedMemory *m = static_cast<QSharedMemory *>(h);

	for (long i = 0; i < n; i++) {
		if (!m->lock())
			return fail("lock", m), -1;
		if (!m->unlock())
			return fail("unlock", m), -1;
	}
	return 0;
}

extern "C" int qt_count(void *h, long n, volatile uint64_t *counter)
{
	QSharedMemory *m = static_cast<QSharedMemory *>(h);

	for (long i = 0; i < n; i++) {
		if (!m->lock())
			return fail("lock", m), -1;
		*counter = *counter + 1;
		if (!m->unlock())
			return fail("unlock", m), -1;
	}
	return 0;
}

static bool qlk(void *h)
{
	QSharedMemory *m = static_cast<QSharedMemory *>(h);

	if (m->lock())
		return true;
	fail("lock", m);
	return false;
}

static bool qul(void *h)
{
	QSharedMemory *m = static_cast<QSharedMemory *>(h);

	if (m->unlock())
		return true;
	fail("unlock", m);
	return false;
}

extern "C" int qt_pp_init(void **hs, int role)
{
	return adapt_pp_init(hs, role, qlk, qul);
}

extern "C" int qt_pingpong(void **hs, long n, int role)
{
	return adapt_pingpong(hs, n, role, qlk, qul);
}

extern "C" void qt_cleanup(const char *key)
{
	QSharedMemory m(QString::fromLatin1(key));
	QByteArray shmfile = QFile::encodeName(m.nativeKey());
	QByteArray semfile = shmfile;

	if (m.attach()) /* the last detach removes the segment and its file */
		m.detach();
	/* The lock's QSystemSemaphore: Qt 6 names its key file like the
	 * segment's, with the "qipc_systemsem_" prefix (ftok(file, 'Q')). */
	semfile.replace("qipc_sharedmemory_", "qipc_systemsem_");
	if (semfile != shmfile) {
		key_t k = ftok(semfile.constData(), 'Q');
		int id = k == -1 ? -1 : semget(k, 1, 0);

		if (id >= 0)
			semctl(id, 0, IPC_RMID);
		unlink(semfile.constData());
	}
}

extern "C" int qt_create_cycle(const char *key, size_t size)
{
	QSharedMemory a(QString::fromLatin1(key)), b(QString::fromLatin1(key));

	if (!a.create(static_cast<qsizetype>(size)))
		return fail("create", &a), -1;
	if (!b.attach())
		return fail("attach", &b), -1;
	static_cast<volatile char *>(a.data())[0] = 1;
	if (static_cast<volatile const char *>(b.constData())[0] != 1) {
		std::snprintf(adapt_error, sizeof adapt_error, "QSharedMemory: "
		              "the second attachment does not see the first's write");
		return -1;
	}
	b.detach();
	a.detach();
	return 0;
}
