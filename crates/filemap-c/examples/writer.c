/*
 * The first process of the Win32 "Creating Named Shared Memory" tutorial,
 * in C against filemap: the same steps, the same names, on Linux, Windows
 * and macOS. Creates Local\MyFileMappingObject, writes a message, and holds
 * the mapping until Enter is pressed; then prints the reply the second
 * process (reader.c) wrote.
 *
 * Win32:   hMapFile = CreateFileMapping(INVALID_HANDLE_VALUE, NULL,
 *                       PAGE_READWRITE, 0, BUF_SIZE, szName);
 *          pBuf = MapViewOfFile(hMapFile, FILE_MAP_ALL_ACCESS, 0, 0, BUF_SIZE);
 *          CopyMemory(pBuf, szMsg, ...); _getch();
 *          UnmapViewOfFile(pBuf); CloseHandle(hMapFile);
 */
#include <filemap.h>

#include <stdio.h>
#include <string.h>

#define BUF_SIZE 256
#define REPLY_AT 128

static const char *szName = "Local\\MyFileMappingObject";
static const char *szMsg = "Message from first process.";

int main(void) {
    FmMapping *hMapFile;
    FmView *view;
    void *pBuf;
    size_t len;

    if (fm_mapping_create(szName, BUF_SIZE, &hMapFile) != FM_OK) {
        fprintf(stderr, "Could not create file mapping object: %s\n", fm_last_error_message());
        return 1;
    }
    if (fm_view_map(hMapFile, 0, BUF_SIZE, FM_ACCESS_READ_WRITE, &view) != FM_OK ||
        fm_view_data(view, &pBuf, &len) != FM_OK) {
        fprintf(stderr, "Could not map view of file: %s\n", fm_last_error_message());
        fm_mapping_close(hMapFile);
        return 1;
    }
    memcpy(pBuf, szMsg, strlen(szMsg) + 1);
    printf("created `%s` (%d bytes) and wrote \"%s\"\n", szName, BUF_SIZE, szMsg);
    printf("run the reader now, then press Enter here\n");
    fflush(stdout);
    (void)getchar();

    printf("reply found in the mapping: \"%s\"\n", (const char *)pBuf + REPLY_AT);
    fm_view_unmap(view);
    fm_mapping_close(hMapFile);
    return 0;
}
