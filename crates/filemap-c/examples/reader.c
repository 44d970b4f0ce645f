/*
 * The second process of the Win32 "Creating Named Shared Memory" tutorial,
 * in C against filemap: opens Local\MyFileMappingObject (made by writer.c),
 * prints the message and writes a reply after it.
 *
 * Win32:   hMapFile = OpenFileMapping(FILE_MAP_ALL_ACCESS, FALSE, szName);
 *          pBuf = MapViewOfFile(hMapFile, FILE_MAP_ALL_ACCESS, 0, 0, BUF_SIZE);
 *          MessageBox(NULL, pBuf, ...);
 *          UnmapViewOfFile(pBuf); CloseHandle(hMapFile);
 */
#include <filemap.h>

#include <stdio.h>
#include <string.h>

#define BUF_SIZE 256
#define REPLY_AT 128

static const char *szName = "Local\\MyFileMappingObject";
static const char *szReply = "Reply from second process.";

int main(void) {
    FmMapping *hMapFile;
    FmView *view;
    void *pBuf;
    size_t len;

    if (fm_mapping_open(szName, FM_ACCESS_READ_WRITE, &hMapFile) != FM_OK) {
        fprintf(stderr, "Could not open file mapping object: %s\n", fm_last_error_message());
        return 1;
    }
    if (fm_view_map(hMapFile, 0, BUF_SIZE, FM_ACCESS_READ_WRITE, &view) != FM_OK ||
        fm_view_data(view, &pBuf, &len) != FM_OK) {
        fprintf(stderr, "Could not map view of file: %s\n", fm_last_error_message());
        fm_mapping_close(hMapFile);
        return 1;
    }
    /* The bytes are shared memory: read at most up to the reply's place. */
    printf("read from `%s`: \"%.*s\"\n", szName, REPLY_AT, (const char *)pBuf);
    memcpy((char *)pBuf + REPLY_AT, szReply, strlen(szReply) + 1);
    fm_view_unmap(view);
    fm_mapping_close(hMapFile);
    return 0;
}
