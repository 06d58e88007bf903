{
  "targets": [
    {
      "target_name": "mirra_native",
      "sources": ["mirra_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
