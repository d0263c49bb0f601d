/* Servers bind the address their node's Launchpad address names.
 *
 * Reverb 0.7 and Courier take only a port and listen on "[::]:PORT", every
 * interface, with no authentication (launch/binding.py says why this is the
 * way round it). Preloaded into a node's process (LD_PRELOAD), this rewrites
 * a bind() to the unspecified address -- IPv4 0.0.0.0 or IPv6 [::] -- into
 * one to ABMRL_BIND_IP: loopback on one machine, the host's cluster IP on a
 * cluster. On the dual-stack IPv6 socket gRPC opens for [::], that is the
 * IPv4-mapped address ::ffff:IP, which takes IPv4 connections to IP only.
 * Every other bind() is passed through unchanged.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *address, socklen_t length) {
  static bind_function real_bind = NULL;
  if (real_bind == NULL) {
    real_bind = (bind_function)dlsym(RTLD_NEXT, "bind");
  }
  const char *ip = getenv("ABMRL_BIND_IP");
  struct in_addr ipv4;
  if (ip == NULL || address == NULL || inet_pton(AF_INET, ip, &ipv4) != 1) {
    return real_bind(fd, address, length);
  }
  if (address->sa_family == AF_INET &&
      length >= (socklen_t)sizeof(struct sockaddr_in)) {
    struct sockaddr_in rewritten = *(const struct sockaddr_in *)address;
    if (rewritten.sin_addr.s_addr == htonl(INADDR_ANY)) {
      rewritten.sin_addr = ipv4;
      return real_bind(fd, (const struct sockaddr *)&rewritten,
                       sizeof(rewritten));
    }
  } else if (address->sa_family == AF_INET6 &&
             length >= (socklen_t)sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 rewritten = *(const struct sockaddr_in6 *)address;
    if (IN6_IS_ADDR_UNSPECIFIED(&rewritten.sin6_addr)) {
      memset(&rewritten.sin6_addr, 0, sizeof(rewritten.sin6_addr));
      rewritten.sin6_addr.s6_addr[10] = 0xff;
      rewritten.sin6_addr.s6_addr[11] = 0xff;
      memcpy(&rewritten.sin6_addr.s6_addr[12], &ipv4, sizeof(ipv4));
      return real_bind(fd, (const struct sockaddr *)&rewritten,
                       sizeof(rewritten));
    }
  }
  return real_bind(fd, address, length);
}
