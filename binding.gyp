{
  "targets": [
    {
      "target_name": "wsk_dgram",
      "sources": ["native/addon.cc", "native/socket.cc", "native/segmentation.cc", "native/address.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["OS=='linux'", {"sources": ["native/os_socket_posix.cc", "native/messages_posix.cc", "native/send_linux.cc", "native/send_posix.cc", "native/recv_linux.cc"]}],
        ["OS=='win'", {
          "sources": ["native/os_socket_win.cc", "native/send_win.cc", "native/recv_win.cc"],
          "defines": ["_WIN32_WINNT=0x0A00", "WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "libraries": ["-lws2_32"],
          "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"]}}
        }]
      ]
    }
  ]
}
