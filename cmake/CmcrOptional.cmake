# Optional dependencies that switch themselves off (included by the top-level CMakeLists.txt).

# An optional dependency, by its option (AUTO, ON or OFF): looked for unless OFF, required
# if ON; when found (found_var), cmcr links `target` and is compiled with `define`. In AUTO
# mode it is first configured and linked in a throwaway project (cmake/probe), because some
# packages' configs stop the configure outright when a dependency of theirs is missing
# (oneDNN's wants OpenCL headers); a dependency that fails there is switched off with one line.
macro(cmcr_optional option found_var target define what)
  if(${option} STREQUAL "ON")
    find_package(${ARGN} REQUIRED)
  elseif(NOT ${option} STREQUAL "OFF")
    cmcr_probe(${option}_PROBE_OK "${target}" ${ARGN})
    if(${option}_PROBE_OK)
      find_package(${ARGN} QUIET)
    endif()
  endif()
  if(${found_var})
    list(APPEND CMCR_DEPS ${target})
    list(APPEND CMCR_DEFINES ${define})
    message(STATUS "cmcr: ${what} on")
  elseif(${option} STREQUAL "OFF")
    message(STATUS "cmcr: ${what} off (${option}=OFF)")
  else()
    message(STATUS "cmcr: ${what} off (${${option}_PROBE_WHY}; ${option}=ON makes it required)")
  endif()
endmacro()

# cmcr_probe(result target package-args...): configure the package and link `target` in
# cmake/probe; sets result and its reason, <option>_PROBE_WHY. A success is cached in the
# build tree; a failure is probed again at the next configure (after an install, say).
function(cmcr_probe result target)
  string(REPLACE "_PROBE_OK" "_PROBE_WHY" why_var ${result})
  if(${result})
    return()
  endif()
  string(REPLACE ";" "|" package "${ARGN}")
  list(GET ARGN 0 name)
  set(hints "")
  if(${name}_DIR) # a package location given on the command line holds in the probe too
    set(hints "-D${name}_DIR=${${name}_DIR}")
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/probe-${result})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/probe -B ${dir}
      -G ${CMAKE_GENERATOR} -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER} -DPROBE_PACKAGE=${package}
      -DPROBE_TARGET=${target} "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH}" ${hints}
    RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_COMMAND} --build ${dir}
      RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
  endif()
  file(REMOVE_RECURSE ${dir})
  if(rc EQUAL 0)
    set(ok TRUE)
  else()
    set(ok FALSE)
  endif()
  set(why "")
  if(NOT ok)
    foreach(pattern "Could NOT find [^\n]*" "undefined reference[^\n]*" "cannot find -l[^\n]*"
        "CMake Error[^\n]*\n[^\n]*")
      if(why STREQUAL "")
        string(REGEX MATCH "${pattern}" why "${log}")
      endif()
    endforeach()
    string(REGEX REPLACE "[ \n]+" " " why "${why}")
    if(why STREQUAL "")
      set(why "its package did not configure or link")
    endif()
    set(why "not usable: ${why}")
  endif()
  if(ok)
    set(${result} TRUE CACHE INTERNAL "")
  endif()
  set(${why_var} "${why}" PARENT_SCOPE)
endfunction()
