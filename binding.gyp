# The source list and the defines live in native/sources.json, shared with CMakeLists.txt (the sanitizer
# build) and scripts/windows/build.sh.
{
  "targets": [
    {
      "target_name": "wsk_dgram",
      "sources": ["<!@(node -p \"require('./native/sources.json').common.join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["<!@(node -p \"require('./native/sources.json').defines.join(' ')\")"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["OS=='linux'", {"sources": ["<!@(node -p \"require('./native/sources.json').linux.join(' ')\")"]}],
        ["OS=='win'", {
          "sources": ["<!@(node -p \"require('./native/sources.json').win.join(' ')\")"],
          "defines": ["_WIN32_WINNT=0x0A00", "WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "libraries": ["-lws2_32"],
          "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"]}}
        }]
      ]
    }
  ]
}
