/*
** hpass_signal_win32.c - signals as a handle, for Windows: placeholder.
*/
#ifdef _WIN32
#endif
