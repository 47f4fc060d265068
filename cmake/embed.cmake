# cmake -DINPUT=file -DOUTPUT=file.c -DNAME=symbol -P embed.cmake: the bytes of INPUT as a C array
#   const unsigned char NAME[] (with a NUL after the last byte) and const size_t NAME_len,
# so a file ships inside the binary. In CMake itself: xxd is not on a minimal Debian.
# Written beside OUTPUT and renamed, so an interrupted build leaves no half-written source.
foreach(v IN ITEMS INPUT OUTPUT NAME)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "embed.cmake: -D${v}= is required")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR bytes "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){24})" "\\1\n" body "${body}")
file(WRITE "${OUTPUT}.tmp"
  "/* Generated from ${INPUT} by cmake/embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char ${NAME}[];\n"
  "extern const size_t ${NAME}_len;\n"
  "const unsigned char ${NAME}[] = {\n${body}0x00};\n"
  "const size_t ${NAME}_len = ${bytes};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
